"""keras-tuner oracles over a `SearchSpace`: the paper's PPO controller and random search.

`PPOOracle` adapts `Controller` + `PPO` (which know nothing of keras-tuner) to the
`keras_tuner.Oracle` protocol (reference.md §4, keras_tuner/tuners/randomsearch.py):

* `populate_space(trial_id)` samples one architecture from the current controller and
  records, for that trial, the decision indices and their log-probability at sampling
  time. The record is part of the oracle state, so it survives a restart. (Samples are
  drawn a batch at a time and discarded on each update; see `PPOOracle._draw`.)
* `end_trial` (after keras-tuner has scored the trial) feeds the reward to PPO with the
  recorded log-probability as the old policy; PPO updates every `batch_size` rewards.
  Trials sampled before an update and finished after it thus get the correct importance
  ratio, whichever worker finishes first (the paper's asynchronous work queue).
* Never returns IDLE: sampling does not wait for an update (keras-tuner workers spin
  without sleeping on IDLE, reference.md §4), it uses the current policy.
* Duplicate architectures are allowed. PPO must see on-policy samples; rejecting repeats
  (as keras-tuner's random sampling does) would bias the ratio.

Rewards that are not fed to PPO (documented rule): a trial whose score is None, NaN or
infinite is marked INVALID by `score_trial` (keras-tuner then retries it up to
`max_retries_per_trial` times, with the same architecture and the same recorded
log-probability), and a trial that ends FAILED is dropped. Neither reaches PPO, so a
crashed child cannot drag the baseline down or be reinforced against; they are counted
in `num_skipped`.

Persistence: `oracle.json` (JSON only, with its journal: `tuner.state_journal`) holds keras-tuner's state plus this oracle's
(space, PPO statistics and buffer, pending trials, sample counter). The controller and
Adam weights are in `<project_dir>/controller.weights.npz` (`Controller.save`'s format, the
Adam slots and state as its extra arrays), written atomically whenever they changed (after each PPO update, and once at start), *before* oracle.json, together
with a copy of the JSON state of that moment. `reload()` (keras-tuner calls it when a
tuner is created with `overwrite=False`) restores both, then repairs the two windows a
kill can leave open:

* killed after the weights were written but before oracle.json: the weights file's copy
  of the state is newer (more PPO updates) and is used;
* killed after keras-tuner recorded a trial's end but before its reward reached PPO: the
  trial has ended (in `end_order`) and is still pending, so its reward is fed now; and
  keras-tuner, which re-queues every trial listed as ongoing in oracle.json, is stopped
  from re-running such an already-ended trial.

Sampling noise comes from a generator seeded by (oracle seed, number of samples handed
out), and drawn-but-unused samples are part of the state, so a resumed search draws
exactly what the uninterrupted one would have.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any

import keras_tuner
import numpy as np
from keras_tuner.oracles import RandomSearchOracle

from nasnet_keras.checks import check_choice
from tuner import keras_tuner_internals as internals
from tuner.controller import Controller
from tuner.ppo import PPO, PPO_OPTIONS
from tuner.categorical import check_space as _check_space
from tuner.categorical import check_stored_space as _check_stored_space
from tuner.categorical import default_objective as _default_objective
from tuner.categorical import strategy_state
from tuner.evolution import EvolutionOracle
from tuner.reward_cache import RewardCacheMixin
from tuner.space import SearchSpace
from tuner.state_journal import StateJournalMixin

TrialStatus = keras_tuner.engine.trial.TrialStatus

WEIGHTS_FILE = "controller.weights.npz"
STATE_KEY = "ppo_oracle"
SPACE_KEY = "search_space"

# The paper trains 20,000 children (App. A.3).
DEFAULT_MAX_TRIALS = 20000


class PPOOracle(StateJournalMixin, RewardCacheMixin, internals.FastCopySpaceMixin, keras_tuner.Oracle):
    """The paper's search strategy: an LSTM controller trained with PPO (App. A.2-A.3).

    Args:
        search_space: the `SearchSpace` whose decisions the controller samples.
        objective: what to maximise (default `Objective("val_accuracy", "max")`). With a
            "min" objective the reward is the negated score.
        max_trials: children to sample in total (paper: 20,000). At the limit
            `populate_space` answers STOPPED.
        seed: seeds the controller's initial weights and the sampling noise.
        units: controller LSTM size (default: `Controller`'s, the paper's 100).
        **kwargs: PPO's options (`tuner.ppo.PPO_OPTIONS`: learning_rate, entropy_weight,
            baseline_decay, batch_size, clip, epochs; defaults and their sources in
            `tuner.ppo.PPO`) go to PPO; the rest to `keras_tuner.Oracle`, e.g.
            `max_retries_per_trial`, `max_consecutive_failed_trials`.
    """

    def __init__(
        self,
        search_space: SearchSpace,
        objective=None,
        max_trials: int | None = DEFAULT_MAX_TRIALS,
        seed: int | None = None,
        units: int | None = None,
        **kwargs,
    ):
        self.search_space = _check_space(search_space, kwargs, "PPOOracle")
        ppo_options = {name: kwargs.pop(name) for name in PPO_OPTIONS if name in kwargs}
        super().__init__(
            objective=_default_objective(objective),
            max_trials=max_trials,
            hyperparameters=search_space.hyperparameters(),
            seed=seed,
            **kwargs,
        )
        # numpy generators need a non-negative seed; keras-tuner accepts any int.
        controller_options = {} if units is None else {"units": units}
        self.controller = Controller(search_space.sizes, seed=abs(int(self.seed)), **controller_options)
        self.ppo = PPO(self.controller, **ppo_options)
        # trial_id -> {"indices": [...], "log_prob": float, "num_updates": policy version}
        self.pending: dict[str, dict[str, Any]] = {}
        self.num_sampled = 0
        # Architectures drawn from the current policy and not yet handed out (see `_draw`).
        self.queue: list[dict[str, Any]] = []
        self.queue_version = 0
        self.num_skipped = 0
        self._weights_version: int | None = None  # PPO update count of the weights on disk

    # --- sampling and rewards ------------------------------------------------------------
    def _draw(self) -> dict[str, Any]:
        """The next architecture from the current policy.

        Drawn `batch_size` at a time (one LSTM pass costs about as much as a single draw,
        and under CPU contention each TF call costs milliseconds), and the rest thrown away
        as soon as PPO updates, so every trial still gets a sample of the policy that is
        current when it starts, with that policy's log-probability.
        """
        if not self.queue or self.queue_version != self.ppo.num_updates:
            rng = np.random.default_rng([abs(int(self.seed)), self.num_sampled])
            decisions, log_probs = self.controller.sample(self.ppo.batch_size, rng=rng)
            self.queue = [
                {"indices": [int(x) for x in row], "log_prob": float(lp)} for row, lp in zip(decisions, log_probs)
            ]
            self.queue_version = self.ppo.num_updates
        self.num_sampled += 1
        return self.queue.pop(0)

    def _propose(self, trial_id):  # RewardCacheMixin.populate_space answers known rewards first
        if self.max_trials and len(self.trials) >= self.max_trials:
            return {"status": TrialStatus.STOPPED, "values": None}
        sample = self._draw()
        self.pending[trial_id] = {**sample, "num_updates": self.ppo.num_updates}
        return {"status": TrialStatus.RUNNING, "values": self.search_space.from_indices(sample["indices"])}

    def _detach_sample(self, trial_id):
        return self.pending.pop(trial_id)

    def _feed_cached(self, record, score):
        self.ppo.observe(record["indices"], record["log_prob"], self._reward(score))

    def score_trial(self, trial):
        """keras-tuner's score, with a missing, None or infinite score turned into NaN.

        keras-tuner marks a NaN score INVALID (retried, then FAILED) but crashes on None
        (`np.isnan(None)`) and would accept infinity, which would wreck the PPO baseline.
        """
        try:
            super().score_trial(trial)
        except ValueError:  # the objective was never reported for this trial
            trial.score, trial.best_step = None, None
        if trial.score is None or not math.isfinite(float(trial.score)):
            trial.score = float("nan")

    def _reward(self, score: float) -> float:
        return float(score) if self.objective.direction == "max" else -float(score)

    @keras_tuner.synchronized
    def end_trial(self, trial):
        super().end_trial(trial)  # scores, marks NaN INVALID, queues retries, saves
        self._settle(self.trials[trial.trial_id])
        self.save()

    # --- state ---------------------------------------------------------------------------
    def _strategy_state(self) -> dict[str, Any]:
        return {
            "search_space": self.search_space.to_dict(),
            "controller": self.controller.get_config(),
            "ppo": self.ppo.get_state(),
            "pending": self.pending,
            "num_sampled": self.num_sampled,
            "queue": self.queue,
            "queue_version": self.queue_version,
            "num_skipped": self.num_skipped,
            "weights_file": WEIGHTS_FILE,
        }

    def _set_strategy_state(self, state: dict[str, Any], where: str) -> None:
        _check_stored_space(self.search_space, state["search_space"], where)
        if state["controller"] != self.controller.get_config():
            raise ValueError(
                f"{where} was written for a controller {state['controller']}, but this oracle's controller is "
                f"{self.controller.get_config()} (was `units` changed?)"
            )
        self.ppo.set_state(state["ppo"])
        self.pending = {str(k): dict(v) for k, v in state["pending"].items()}
        self.num_sampled = int(state["num_sampled"])
        self.queue = [dict(entry) for entry in state["queue"]]
        self.queue_version = int(state["queue_version"])
        self.num_skipped = int(state["num_skipped"])

    def get_state(self):
        state = super().get_state()
        state[STATE_KEY] = self._strategy_state()
        return state

    def set_state(self, state):
        super().set_state(state)
        self._set_strategy_state(strategy_state(state, STATE_KEY, "a PPOOracle"), "oracle.json")

    @property
    def weights_path(self) -> str:
        return os.path.join(internals.project_dir(self), WEIGHTS_FILE)

    def save(self):
        path = self.weights_path
        if self._weights_version != self.ppo.num_updates or not os.path.exists(path):
            arrays = {f"optimizer/{i}": w for i, w in enumerate(self.ppo.optimizer.get_weights())}
            arrays["state"] = np.array(json.dumps(self._strategy_state()))
            self.controller.save(path, extra=arrays)
            self._weights_version = self.ppo.num_updates
        super().save()

    def reload(self):
        super().reload()  # trials from trial.json files, then oracle.json -> set_state
        path = self.weights_path
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"Cannot resume the PPO search: {path} (controller and optimizer weights) is missing while "
                f"{internals.oracle_file(self)} exists. Restore the file, or start a new project"
            )
        extra = self.controller.load(path)  # a stale file fails the resume below
        optimizer = [extra[f"optimizer/{i}"] for i in range(len(self.ppo.optimizer.get_weights()))]
        disk_state = json.loads(str(extra["state"]))
        disk_updates = disk_state["ppo"]["num_updates"]
        if disk_updates > self.ppo.num_updates:
            # Killed between writing the weights and oracle.json: the weights' state is newer.
            self._set_strategy_state(disk_state, path)
        elif disk_updates < self.ppo.num_updates:
            raise RuntimeError(
                f"{path} holds the controller after {disk_updates} PPO updates but oracle.json records "
                f"{self.ppo.num_updates}; the weights file is stale (was it replaced?)"
            )
        self.ppo.optimizer.set_weights(optimizer)
        self._weights_version = self.ppo.num_updates
        if self._repair_after_kill():
            self.save()

    def _repair_after_kill(self) -> bool:
        changed = False
        ended = set(self.end_order)
        # keras-tuner re-queues every trial oracle.json lists as ongoing, even one whose end
        # it had already recorded (it saves before forgetting the trial): don't re-run it.
        retry_queue = internals.retry_queue(self)
        requeued = [t for t in retry_queue if t in ended and self.trials[t].status != TrialStatus.INVALID]
        for trial_id in requeued:
            retry_queue.remove(trial_id)
            changed = True
        for trial_id in list(self.pending):
            if trial_id not in self.trials:
                warnings.warn(f"Dropping the sampling record of unknown trial {trial_id!r}", stacklevel=2)
                del self.pending[trial_id]
                changed = True
            elif trial_id in ended and trial_id not in retry_queue:
                self._settle(self.trials[trial_id])  # ended, but its reward never reached PPO
                changed = True
        return changed


class RandomOracle(StateJournalMixin, RewardCacheMixin, internals.FastCopySpaceMixin, RandomSearchOracle):
    """The paper's baseline: every decision drawn uniformly (Sec. 4.4, Fig. 6).

    keras-tuner's `RandomSearchOracle` over `search_space.hyperparameters()`: each
    `Choice` is sampled by `hp.random_sample`, uniformly over its values. This subclass
    only gives it the same constructor as `PPOOracle` and stores the space in its state, so
    a project cannot be resumed with a different space. (keras-tuner skips exact
    repeats of earlier architectures, which in a space of ~1e30 points changes nothing.)
    """

    def __init__(self, search_space: SearchSpace, objective=None, max_trials: int | None = DEFAULT_MAX_TRIALS,
                 seed: int | None = None, **kwargs):
        self.search_space = _check_space(search_space, kwargs, "RandomOracle")
        super().__init__(
            objective=_default_objective(objective),
            max_trials=max_trials,
            seed=seed,
            hyperparameters=search_space.hyperparameters(),
            **kwargs,
        )

    def _propose(self, trial_id):
        return RandomSearchOracle.populate_space(self, trial_id)

    def _detach_sample(self, trial_id):
        return {}

    def _feed_cached(self, record, score):
        pass  # random search learns nothing from rewards

    def get_state(self):
        state = super().get_state()
        state[SPACE_KEY] = self.search_space.to_dict()
        return state

    def set_state(self, state):
        super().set_state(state)
        if SPACE_KEY in state:
            _check_stored_space(self.search_space, state[SPACE_KEY], "oracle.json")


STRATEGIES = {"ppo": PPOOracle, "random": RandomOracle, "evolution": EvolutionOracle}
# Options that configure one strategy and mean nothing to the others.
STRATEGY_OPTIONS = {"ppo": PPO_OPTIONS + ("units",), "evolution": ("population_size", "sample_size"), "random": ()}
_OPTION_FLAGS = {"batch_size": "--controller-batch", "learning_rate": "--controller-lr",
                 "population_size": "--population-size", "sample_size": "--sample-size"}


def make_oracle(strategy: str, search_space: SearchSpace, preset: str = "default", **kwargs) -> keras_tuner.Oracle:
    """Build the oracle of a search strategy: "evolution" (the default), "ppo" (the paper's) or "random".

    Options given as None are left at their defaults, so a command line can pass its
    optional arguments through unchanged. `preset` names a settings table of
    `tuner.presets` ("default": chosen for 100-500 children; "paper": the paper's); options
    given explicitly override it. Options of another strategy (PPO's for "random", evolution's
    for "ppo", ...) are an error rather than silently ignored.
    """
    check_choice("strategy", strategy, STRATEGIES, hint=" (the search strategy)")
    from tuner.presets import preset_settings

    given = {k: v for k, v in kwargs.items() if v is not None}
    for other, options in STRATEGY_OPTIONS.items():
        misplaced = [k for k in options if k in given and other != strategy]
        if misplaced:
            named = ", ".join(f"{k}={given[k]!r}" + (f" ({_OPTION_FLAGS[k]})" if k in _OPTION_FLAGS else "")
                              for k in misplaced)
            raise ValueError(f"Options {misplaced} configure {other} and mean nothing for strategy {strategy!r}. "
                             f"Received: {named}")
    kwargs = {**preset_settings(strategy, preset), **given}
    return STRATEGIES[strategy](search_space, **kwargs)
