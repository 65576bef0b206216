"""Proximal Policy Optimization of the controller from architecture rewards.

Paper App. A.3: PPO with learning rate 0.00035, an entropy penalty of weight 0.00001,
and a baseline that is an exponential moving average of previous rewards with weight
0.95; the controller is updated on minibatches of 20 architectures. The paper does not
give PPO's clip range or the number of epochs per batch; see `PPO` for the choice.

The hyperparameters are declared once, as `PPO.__init__`'s defaults; `PPO_OPTIONS` names
them for the oracle and the command line.

Like the controller, this module knows nothing of keras-tuner: it takes decision
indices, the log-probability they had when sampled, and a reward ("higher is better").
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Mapping, Sequence

import numpy as np
import tensorflow as tf

from nasnet_keras.checks import check_int, check_number
from tuner.controller import Controller


class Adam:
    """Adam (Kingma & Ba 2015) over a fixed list of tf.Variables, with explicit slots.

    Written out rather than taken from `keras.optimizers` so that its whole state (step
    and moment estimates) is three plain lists of arrays that the oracle stores beside
    the controller weights, and so that it runs inside the traced PPO update.
    """

    def __init__(self, variables: Sequence[tf.Variable], learning_rate: float,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8):
        self.variables = list(variables)
        self.learning_rate, self.beta_1, self.beta_2, self.epsilon = learning_rate, beta_1, beta_2, epsilon
        self.step = tf.Variable(0.0, trainable=False, name="adam_step")
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False, name=f"adam_m_{i}") for i, v in enumerate(self.variables)]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False, name=f"adam_v_{i}") for i, v in enumerate(self.variables)]

    def hyperparameters(self) -> tf.Tensor:
        return tf.constant([self.learning_rate, self.beta_1, self.beta_2, self.epsilon], tf.float32)

    @staticmethod
    def apply_graph(variables, gradients, step, ms, vs, hyperparameters) -> None:
        """The Adam update, as a function of its state so that one trace serves every instance."""
        learning_rate, beta_1, beta_2, epsilon = tf.unstack(hyperparameters)
        step.assign_add(1.0)
        scale = learning_rate * tf.sqrt(1.0 - beta_2**step) / (1.0 - beta_1**step)
        for variable, grad, m, v in zip(variables, gradients, ms, vs):
            grad = tf.convert_to_tensor(grad)  # embedding gradients arrive as IndexedSlices
            m.assign(beta_1 * m + (1.0 - beta_1) * grad)
            v.assign(beta_2 * v + (1.0 - beta_2) * tf.square(grad))
            variable.assign_sub(scale * m / (tf.sqrt(v) + epsilon))

    def get_weights(self) -> list[np.ndarray]:
        return [self.step.numpy()] + [m.numpy() for m in self.m] + [v.numpy() for v in self.v]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        n = len(self.variables)
        if len(weights) != 1 + 2 * n:
            raise ValueError(f"Expected {1 + 2 * n} optimizer arrays (step, {n} m, {n} v). Received: {len(weights)}")
        for slot, value in zip([self.step] + self.m + self.v, weights):
            if tuple(np.shape(value)) != tuple(slot.shape):
                raise ValueError(f"Optimizer slot {slot.name} must have shape {tuple(slot.shape)}. Received: {np.shape(value)}")
        for slot, value in zip([self.step] + self.m + self.v, weights):
            slot.assign(np.asarray(value, dtype=np.float32))


class _UpdateGraphs:
    """PPO's traced step and statistics, shared by all PPO instances of one controller shape.

    Weights, optimizer slots and hyperparameters are arguments (traced by shape), so a new
    PPO or oracle in the same process reuses the trace instead of paying seconds again.
    """

    def __init__(self, controller: Controller):
        self.evaluate = controller._graphs.evaluate_graph
        self.step = tf.function(self.step_graph, reduce_retracing=True)
        self.stats = tf.function(self.stats_graph, reduce_retracing=True)

    def surrogate(self, weights, batch, loss_hp):
        decisions, old_log_prob, advantage = batch
        clip, entropy_weight = tf.unstack(loss_hp)
        log_prob, entropy = self.evaluate(weights, decisions)
        ratio = tf.exp(log_prob - old_log_prob)
        clipped = tf.clip_by_value(ratio, 1.0 - clip, 1.0 + clip)
        objective = tf.reduce_mean(tf.minimum(ratio * advantage, clipped * advantage))
        loss = -objective - entropy_weight * tf.reduce_mean(entropy)
        stats = {
            "loss": loss,
            "entropy": tf.reduce_mean(entropy),
            "approx_kl": tf.reduce_mean(old_log_prob - log_prob),
            "clip_fraction": tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > clip, tf.float32)),
        }
        return loss, stats

    def step_graph(self, weights, adam, batch, loss_hp):
        """One gradient step on the whole batch; returns the statistics before the step."""
        with tf.GradientTape() as tape:
            loss, stats = self.surrogate(weights, batch, loss_hp)
        gradients = tape.gradient(loss, weights)
        step, ms, vs, adam_hp = adam
        Adam.apply_graph(weights, gradients, step, ms, vs, adam_hp)
        return stats

    def stats_graph(self, weights, batch, loss_hp):
        return self.surrogate(weights, batch, loss_hp)[1]


_GRAPHS: dict[tuple, _UpdateGraphs] = {}


def _update_graphs(controller: Controller) -> _UpdateGraphs:
    key = (controller.sizes, controller.units)
    if key not in _GRAPHS:
        _GRAPHS[key] = _UpdateGraphs(controller)
    return _GRAPHS[key]


class PPO:
    """Clipped-surrogate PPO for a `Controller`, fed one architecture's reward at a time.

    Args:
        controller: the policy to train.
        learning_rate, entropy_weight, baseline_decay, batch_size: the paper's values
            (0.00035, 0.00001, 0.95, 20).
        clip: PPO's epsilon. 0.2 is the value Schulman et al. (2017, Table 1) found best
            among {0.1, 0.2, 0.3} and the default of common implementations (OpenAI
            baselines ppo2, stable-baselines3).
        epochs: gradient steps on each batch of 20 (each step uses the whole batch, which is
            too small to split into minibatches). 10 follows the PPO paper's continuous-control
            setting (Table 3; Atari uses 3) and stable-baselines3's default, and was the best of
            1, 3, 5, 10 measured here: on the synthetic task of tests/tuner/test_oracles.py
            (reward = fraction of the 50 decisions matching a hidden architecture; uniform
            random scores 0.247), at the paper's learning rate, the mean reward of trials
            900-999 over 3 seeds was 0.27 / 0.68 / 0.82 / 0.90 for 1 / 3 / 5 / 10 epochs.
            With one epoch PPO is plain REINFORCE with a baseline, which at lr 0.00035 has
            barely moved after 50 updates. The clipped ratio bounds how far the epochs move
            the policy; a noisy real reward may still warrant fewer. One update (10 epochs)
            took 170 ms (169 ms of CPU) on this project's 2-core CPU with one-thread pools, as
            a distributed search's chief runs it (benchmarks/controller.py --threads 1).

    Reward baseline: an exponential moving average of previous rewards (weight
    `baseline_decay`); each reward's advantage is taken against the baseline *before* that
    reward is folded in, so a reward never partly cancels itself. The baseline starts at
    the first reward (advantage 0), not at 0, which would make every early advantage
    positive and push the policy toward whatever it sampled first.

    Old policy: `observe` takes the log-probability recorded when the architecture was
    sampled. Architectures sampled before an update and rewarded after it (workers train
    children asynchronously) therefore get the correct importance ratio
    exp(log pi_new - log pi_at_sampling_time).

    Loss per batch: -mean(min(r A, clip(r, 1-eps, 1+eps) A)) - entropy_weight * mean(H),
    with r the importance ratio, A the advantage and H the summed per-step entropy.
    """

    def __init__(
        self,
        controller: Controller,
        learning_rate: float = 0.00035,
        entropy_weight: float = 0.00001,
        baseline_decay: float = 0.95,
        batch_size: int = 20,
        clip: float = 0.2,
        epochs: int = 10,
        normalize_advantages: bool = False,
    ):
        if not isinstance(controller, Controller):
            raise ValueError(f"`controller` must be a tuner.controller.Controller. Received: {type(controller).__name__}")
        self.controller = controller
        self.learning_rate = check_number("learning_rate", learning_rate, minimum=0, exclusive_minimum=True)
        self.entropy_weight = check_number("entropy_weight", entropy_weight, minimum=0)
        self.baseline_decay = check_number("baseline_decay", baseline_decay, minimum=0, maximum=1,
                                           exclusive_maximum=True)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.clip = check_number("clip", clip, minimum=0, exclusive_minimum=True)
        self.epochs = check_int("epochs", epochs, minimum=1)
        if not isinstance(normalize_advantages, bool):
            raise ValueError(f"`normalize_advantages` must be True or False. Received: {normalize_advantages!r}")
        # Scale each batch's advantages to zero mean, unit spread (as PPO implementations do):
        # accuracy differences of a few points otherwise give steps too small to move the policy.
        self.normalize_advantages = normalize_advantages
        self.optimizer = Adam(controller.trainable_variables, learning_rate)

        self.baseline: float | None = None
        self.num_rewards = 0
        self.num_updates = 0
        self.buffer: list[dict[str, Any]] = []
        self.last_stats: dict[str, float] = {}

        self._graphs = _update_graphs(controller)

    # --- the update ----------------------------------------------------------------------
    def update(self) -> dict[str, float]:
        """Run `epochs` gradient steps on the buffered batch, then clear the buffer."""
        if not self.buffer:
            raise ValueError("PPO.update() called with an empty buffer: observe() some rewards first")
        decisions = np.array([entry["decisions"] for entry in self.buffer], dtype=np.int32)
        old_log_prob = np.array([entry["old_log_prob"] for entry in self.buffer], dtype=np.float32)
        advantage = np.array([entry["advantage"] for entry in self.buffer], dtype=np.float32)
        if self.normalize_advantages and len(advantage) > 1:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        weights = tuple(self.controller.trainable_variables)
        batch = (tf.constant(decisions), tf.constant(old_log_prob), tf.constant(advantage))
        loss_hp = tf.constant([self.clip, self.entropy_weight], tf.float32)
        adam = (self.optimizer.step, tuple(self.optimizer.m), tuple(self.optimizer.v), self.optimizer.hyperparameters())
        # The epochs loop stays in Python: one traced step is several times cheaper to trace
        # and optimise than a graph loop around it, and ~1 ms per call is negligible.
        before = self._graphs.step(weights, adam, batch, loss_hp)
        for _ in range(self.epochs - 1):
            self._graphs.step(weights, adam, batch, loss_hp)
        after = self._graphs.stats(weights, batch, loss_hp)
        self.last_stats = {f"{k}_before": float(v) for k, v in before.items()}
        self.last_stats.update({k: float(v) for k, v in after.items()})
        self.last_stats["mean_reward"] = float(np.mean([entry["reward"] for entry in self.buffer]))
        self.last_stats["baseline"] = float(self.baseline)
        self.num_updates += 1
        self.buffer = []
        return self.last_stats

    def observe(self, decisions: Sequence[int], old_log_prob: float, reward: float) -> bool:
        """Buffer one architecture's reward; run an update when `batch_size` are buffered.

        Returns True when this call ran an update.
        """
        decisions = [int(x) for x in np.asarray(decisions).reshape(-1)]
        sizes = self.controller.sizes
        if len(decisions) != len(sizes) or any(not 0 <= x < s for x, s in zip(decisions, sizes)):
            raise ValueError(
                f"`decisions` must be {len(sizes)} indices within the option counts {list(sizes)}. "
                f"Received: {decisions}"
            )
        for name, value in (("reward", reward), ("old_log_prob", old_log_prob)):
            if value is None or not math.isfinite(float(value)):
                raise ValueError(f"`{name}` must be a finite number. Received: {name}={value!r}")
        reward, old_log_prob = float(reward), float(old_log_prob)
        if self.baseline is None:
            self.baseline = reward
        advantage = reward - self.baseline
        self.baseline = self.baseline_decay * self.baseline + (1.0 - self.baseline_decay) * reward
        self.num_rewards += 1
        self.buffer.append(
            {"decisions": decisions, "old_log_prob": old_log_prob, "reward": reward, "advantage": advantage}
        )
        if len(self.buffer) >= self.batch_size:
            self.update()
            return True
        return False

    # --- state ---------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """JSON-able statistics and buffer (the weights live in the controller/optimizer)."""
        return {
            "baseline": self.baseline,
            "num_rewards": self.num_rewards,
            "num_updates": self.num_updates,
            "buffer": [dict(entry) for entry in self.buffer],
            "last_stats": dict(self.last_stats),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        missing = {"baseline", "num_rewards", "num_updates", "buffer"} - set(state)
        if missing:
            raise ValueError(f"PPO state misses keys {sorted(missing)}. Received keys: {sorted(state)}")
        for entry in state["buffer"]:
            if set(entry) != {"decisions", "old_log_prob", "reward", "advantage"} or len(entry["decisions"]) != len(
                self.controller.sizes
            ):
                raise ValueError(f"Malformed PPO buffer entry (wrong keys or decision count): {entry!r}")
        self.baseline = None if state["baseline"] is None else float(state["baseline"])
        self.num_rewards = int(state["num_rewards"])
        self.num_updates = int(state["num_updates"])
        self.buffer = [dict(entry) for entry in state["buffer"]]
        self.last_stats = dict(state.get("last_stats", {}))


# PPO's options, declared once: the keyword arguments (and paper defaults) of `PPO.__init__`.
# `PPOOracle` forwards these and `make_oracle` refuses them for strategies without PPO.
PPO_OPTIONS: tuple[str, ...] = tuple(name for name in inspect.signature(PPO.__init__).parameters
                                     if name not in ("self", "controller"))
