"""The controller RNN: a policy over a fixed sequence of categorical decisions.

Paper App. A.2: a one-layer LSTM with 100 hidden units emits the 10B decisions one after
the other through one softmax head per decision; the embedding of each sampled decision
is the next step's input, and all weights are initialised uniformly in [-0.1, 0.1].

The controller knows nothing of NASNet or keras-tuner (style.md §4): it is built from the
list of decision sizes only. `SearchSpace.sizes` supplies them and `SearchSpace` maps the
sampled indices back to an architecture.

Speed: sampling is a `tf.function` with a graph loop over the decisions, scoring (PPO's
update) one fused LSTM kernel over all of them; all n architectures go through the LSTM
together, and every controller of one shape shares one trace (see `PolicyGraphs`), so a
call costs one graph execution.
"""

from __future__ import annotations

import json
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from nasnet_keras.checks import check_int
from nasnet_keras.fileio import atomic_path

INIT_SCALE = 0.1  # U(-0.1, 0.1), paper App. A.2
# Logit of the padding slots of the padded heads (see `PolicyGraphs`): finite, so that their
# 0 * log(0) entropy terms stay 0 and their gradients finite (with -inf they are NaN).
_MASKED_LOGIT = -1e9

WEIGHT_NAMES = (
    "start_token",  # [1, E]: the learned input of the first step
    "embeddings",  # [sum(sizes), E]: one row per option of every decision
    "lstm_input_kernel",  # [E, 4U]  (gates i, f, g, o)
    "lstm_recurrent_kernel",  # [U, 4U]
    "lstm_bias",  # [4U]
    "head_kernel",  # [U, sum(sizes)]: the softmax heads, side by side
    "head_bias",  # [sum(sizes)]
)


# The controller `.npz` format (one for `Controller.save` and the oracle's
# controller.weights.npz): weight i of `WEIGHT_NAMES` under "controller/<i>", the
# `get_config()` JSON under "config", and whatever else the writer adds under its own keys
# (the oracle: "optimizer/<i>" and "state"). Oracle files written before "config" existed
# load too (the config is then not checked).
WEIGHT_KEY = "controller/{}"
CONFIG_KEY = "config"


class PolicyGraphs:
    """The traced sampling and scoring functions for one controller shape.

    The weights are arguments, not captured variables: tf.function traces variables by
    shape, so every controller with the same sizes and units shares one trace (tracing
    and optimising these graphs costs seconds, a call milliseconds). Get instances
    through `policy_graphs`, which caches them.

    Sampling loops over the decisions in a graph loop (not unrolled; an unrolled 50-step
    PPO update took ~17 s to trace); scoring runs the LSTM as one fused kernel. The heads
    are laid out padded, [D, max(sizes)], with the padding masked out, so every step of
    a loop is the same computation and all steps' softmaxes are one batched op; padding
    to the largest decision (13 ops) rather than to all options (360 columns for B=5)
    keeps that softmax 28 times smaller.
    """

    def __init__(self, sizes: tuple[int, ...], units: int):
        self.sizes, self.units = sizes, units
        self.num_decisions = len(sizes)
        self.width = max(sizes)
        self.offsets = np.cumsum((0,) + sizes[:-1]).astype(np.int32)
        # columns[d, k]: the head column of option k of decision d (padding repeats the
        # last one); valid[d, k]: k is a real option of decision d.
        k = np.arange(self.width)
        self.columns = (self.offsets[:, None] + np.minimum(k[None], np.array(sizes)[:, None] - 1)).astype(np.int32)
        self.valid = k[None] < np.array(sizes)[:, None]
        # Sampling is XLA-compiled: its loop is 50 steps of a dozen tiny ops, which XLA fuses;
        # on the shared 2-core CPU that made sample(1) 3 ms instead of 4-25 ms (the untraced
        # ops suffer most from contention), for a ~1 s compile per batch size and process.
        # The PPO update is not: there XLA measured slower and took seconds longer to compile.
        self.sample = tf.function(self.sample_graph, reduce_retracing=True, jit_compile=True)
        self.evaluate = tf.function(self.evaluate_graph, reduce_retracing=True)

    def _lstm(self, recurrent_kernel, xz, h, c):
        """One LSTM step given the input's projection `xz = x @ W_x + b`."""
        z = xz + tf.matmul(h, recurrent_kernel)
        i, f, g, o = tf.split(z, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, c

    def _heads(self, head_kernel, head_bias):
        """Padded heads: kernel [U, D, width], bias [D, width]."""
        columns = tf.constant(self.columns)
        return tf.gather(head_kernel, columns, axis=1), tf.gather(head_bias, columns)

    def sample_graph(self, weights, gumbel):
        """Sample n sequences at once; `gumbel` [n, D, width] holds one noise value per option."""
        start, embeddings, input_kernel, recurrent_kernel, bias, head_kernel, head_bias = weights
        valid, offsets = tf.constant(self.valid), tf.constant(self.offsets)
        kernels, biases = self._heads(head_kernel, head_bias)
        n = tf.shape(gumbel)[0]
        h = c = tf.zeros([n, self.units])
        x = tf.tile(start, [n, 1])
        log_prob = tf.zeros([n])
        choices = tf.TensorArray(tf.int32, size=self.num_decisions)
        for d in tf.range(self.num_decisions):
            h, c = self._lstm(recurrent_kernel, tf.matmul(x, input_kernel) + bias, h, c)
            logits = tf.where(valid[d], tf.matmul(h, kernels[:, d]) + biases[d], _MASKED_LOGIT)
            # Gumbel-max: argmax(logits + Gumbel noise) is an exact sample of softmax(logits).
            choice = tf.argmax(logits + gumbel[:, d], axis=1, output_type=tf.int32)
            log_prob += tf.gather(tf.nn.log_softmax(logits), choice, batch_dims=1)
            choices = choices.write(d, choice)
            x = tf.gather(embeddings, choice + offsets[d])
        return tf.transpose(choices.stack()), log_prob

    def evaluate_graph(self, weights, decisions):
        """Teacher-forced (log-probability [n], entropy [n]) of given decisions [n, D].

        The inputs of every step are known, so the whole recurrence is one fused LSTM
        kernel forward and one backward (`_fused_lstm`), and the heads of all steps are
        single batched products. The entropy is the sum over steps of each step's softmax
        entropy along the given path.
        """
        start, embeddings, input_kernel, recurrent_kernel, bias, head_kernel, head_bias = weights
        valid, offsets = tf.constant(self.valid), tf.constant(self.offsets)
        decisions = tf.convert_to_tensor(decisions, tf.int32)
        n = tf.shape(decisions)[0]
        previous = tf.gather(embeddings, decisions[:, :-1] + offsets[:-1])  # [n, D-1, E]
        inputs = tf.concat([tf.tile(start[None], [n, 1, 1]), previous], axis=1)  # [n, D, E]
        hidden = self._fused_lstm(tf.transpose(inputs, [1, 0, 2]), input_kernel, recurrent_kernel, bias)  # [D, n, U]
        kernels, biases = self._heads(head_kernel, head_bias)
        logits = tf.einsum("dnu,udk->ndk", hidden, kernels) + biases  # [n, D, width]
        log_probs = tf.nn.log_softmax(tf.where(valid[None], logits, _MASKED_LOGIT), axis=-1)
        chosen = tf.gather(log_probs, decisions, batch_dims=2)  # [n, D]
        entropy = -tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=[1, 2])
        return tf.reduce_sum(chosen, axis=1), entropy

    def _fused_lstm(self, inputs, input_kernel, recurrent_kernel, bias):
        """Hidden states [D, n, U] of `_lstm` run over `inputs` [D, n, E] from zero states.

        TensorFlow's `BlockLSTM` kernel does the D steps in one op, and its gradient in
        one more; a graph loop of `_lstm` steps runs and differentiates a dozen small ops
        per step. On the 2-core CPU one PPO epoch (forward and backward on 20
        architectures, 50 decisions) took 11.7 ms instead of 16.0 ms (median of 40,
        interleaved, one-thread pools); what is left is the LSTM's own arithmetic.
        It is the same cell: `BlockLSTM` orders the gates (i, g, f, o) where the weights
        (and their files) keep (i, f, g, o), so the columns are permuted in the graph;
        no forget-gate bias, no cell clipping, no peepholes.
        """
        def gates_igfo(matrix):
            i, f, g, o = tf.split(matrix, 4, axis=-1)
            return tf.concat([i, g, f, o], axis=-1)

        n = tf.shape(inputs)[1]
        zeros = tf.zeros([n, self.units])
        no_peephole = tf.zeros([self.units])
        *_, hidden = tf.raw_ops.BlockLSTM(
            seq_len_max=tf.cast(tf.shape(inputs)[0], tf.int64), x=inputs, cs_prev=zeros, h_prev=zeros,
            w=gates_igfo(tf.concat([input_kernel, recurrent_kernel], axis=0)), b=gates_igfo(bias),
            wci=no_peephole, wcf=no_peephole, wco=no_peephole, forget_bias=0.0, cell_clip=-1.0, use_peephole=False)
        return hidden


_GRAPHS: dict[tuple, PolicyGraphs] = {}


def policy_graphs(sizes: Sequence[int], units: int) -> PolicyGraphs:
    """The shared `PolicyGraphs` for this shape (embedding size is traced by shape)."""
    key = (tuple(int(s) for s in sizes), int(units))
    if key not in _GRAPHS:
        _GRAPHS[key] = PolicyGraphs(*key)
    return _GRAPHS[key]


class Controller:
    """LSTM policy over `len(sizes)` categorical decisions, decision d having `sizes[d]` options.

    Args:
        sizes: number of options of each decision, in sampling order.
        units: LSTM hidden units (paper: 100).
        embedding_dim: size of the decision embeddings fed back as inputs. The paper does
            not say; the default is `units`, the usual choice (ENAS's controller, for one).
        seed: seeds the weight initialisation and the default sampling generator.

    Each decision has its own embedding rows and its own softmax head: "op 1 of block 3"
    and "op 1 of block 4" are different questions even when their options coincide.
    """

    def __init__(self, sizes: Sequence[int], units: int = 100, embedding_dim: int | None = None, seed=None):
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) == 0:
            raise ValueError(f"`sizes` must be a non-empty list of option counts. Received: sizes={sizes!r}")
        self.sizes = tuple(check_int("options", size, minimum=1, where=f"Decision {d}") for d, size in enumerate(sizes))
        check_int("units", units, minimum=1)
        check_int("embedding_dim", embedding_dim, minimum=1, allow_none=True)
        self.units = units
        self.embedding_dim = embedding_dim or units
        self.seed = seed
        self.num_decisions = len(self.sizes)
        self.offsets = tuple(int(o) for o in np.cumsum((0,) + self.sizes[:-1]))
        self.total_options = int(sum(self.sizes))
        self._rng = np.random.default_rng(seed)

        init = np.random.default_rng(seed)
        e, u, t = self.embedding_dim, self.units, self.total_options
        shapes = {
            "start_token": (1, e),
            "embeddings": (t, e),
            "lstm_input_kernel": (e, 4 * u),
            "lstm_recurrent_kernel": (u, 4 * u),
            "lstm_bias": (4 * u,),
            "head_kernel": (u, t),
            "head_bias": (t,),
        }
        # All weights, biases included, U(-0.1, 0.1) as the paper says.
        self._variables = {
            name: tf.Variable(init.uniform(-INIT_SCALE, INIT_SCALE, shapes[name]).astype(np.float32), name=name)
            for name in WEIGHT_NAMES
        }
        self._graphs = policy_graphs(self.sizes, self.units)

    # --- weights -------------------------------------------------------------------------
    @property
    def trainable_variables(self) -> list[tf.Variable]:
        return [self._variables[name] for name in WEIGHT_NAMES]

    def get_weights(self) -> list[np.ndarray]:
        """The weights as numpy arrays, in `WEIGHT_NAMES` order."""
        return [v.numpy() for v in self.trainable_variables]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        if len(weights) != len(WEIGHT_NAMES):
            raise ValueError(f"Expected {len(WEIGHT_NAMES)} arrays ({', '.join(WEIGHT_NAMES)}). Received: {len(weights)}")
        for name, value in zip(WEIGHT_NAMES, weights):
            variable = self._variables[name]
            if tuple(np.shape(value)) != tuple(variable.shape):
                raise ValueError(
                    f"Weight {name!r} must have shape {tuple(variable.shape)}. Received: {tuple(np.shape(value))}"
                )
        for name, value in zip(WEIGHT_NAMES, weights):
            self._variables[name].assign(np.asarray(value, dtype=np.float32))

    def get_config(self) -> dict:
        return {"sizes": list(self.sizes), "units": self.units, "embedding_dim": self.embedding_dim}

    def save(self, path: str, extra: Mapping[str, np.ndarray] | None = None) -> None:
        """Write weights, config and `extra` arrays to an .npz file, atomically."""
        arrays = {WEIGHT_KEY.format(i): value for i, value in enumerate(self.get_weights())}
        arrays[CONFIG_KEY] = np.array(json.dumps(self.get_config()))
        clash = sorted(set(arrays) & set(extra or {}))
        if clash:
            raise ValueError(f"`extra` may not use the controller's own keys. Received: {clash}")
        arrays.update(extra or {})
        with atomic_path(path) as temporary:
            np.savez(temporary, **arrays)

    def load(self, path: str) -> dict[str, np.ndarray]:
        """Load weights written by `save` into this controller (same config required).

        Returns the file's other arrays (what `save` got as `extra`).
        """
        with np.load(path) as data:
            if CONFIG_KEY in data:
                config = json.loads(str(data[CONFIG_KEY]))
                if config != self.get_config():
                    raise ValueError(
                        f"{path} holds a controller with config {config}, but this controller has {self.get_config()}"
                    )
            own = [WEIGHT_KEY.format(i) for i in range(len(WEIGHT_NAMES))]
            missing = [key for key in own if key not in data]
            if missing:
                raise ValueError(f"{path} is not a controller file: it has no {', '.join(missing)}")
            self.set_weights([data[key] for key in own])
            return {key: data[key] for key in data.files if key not in own and key != CONFIG_KEY}

    @classmethod
    def from_file(cls, path: str) -> "Controller":
        with np.load(path) as data:
            config = json.loads(str(data[CONFIG_KEY]))
        controller = cls(**config)
        controller.load(path)
        return controller

    # --- the policy ----------------------------------------------------------------------
    def evaluate(self, decisions):
        """Teacher-forced (log-probability [n], entropy [n]) of decisions [n, D], untraced.

        For use inside another traced function (PPO's update); see `PolicyGraphs.evaluate`.
        """
        return self._graphs.evaluate_graph(tuple(self.trainable_variables), decisions)

    def sample(self, n: int = 1, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Sample n decision sequences: (int32 array [n, D], log-probabilities float32 [n]).

        `rng` supplies the noise (default: the controller's own generator); the oracle passes
        a generator derived from its seed and trial count so that sampling is reproducible
        across a restart.
        """
        n = check_int("n", n, minimum=1)
        rng = self._rng if rng is None else rng
        uniform = rng.random((int(n), self.num_decisions, self._graphs.width))
        gumbel = -np.log(-np.log(np.clip(uniform, 1e-12, 1.0 - 1e-12)))
        decisions, log_prob = self._graphs.sample(tuple(self.trainable_variables), tf.constant(gumbel, tf.float32))
        return decisions.numpy(), log_prob.numpy()

    def _check_decisions(self, decisions) -> tf.Tensor:
        array = np.asarray(decisions)
        if array.ndim == 1:
            array = array[None]
        if array.ndim != 2 or array.shape[1] != self.num_decisions:
            raise ValueError(
                f"Decisions must have shape [n, {self.num_decisions}]. Received shape: {array.shape}"
            )
        if array.size and (array.min() < 0 or np.any(array >= np.asarray(self.sizes))):
            bad = np.argwhere((array < 0) | (array >= np.asarray(self.sizes)))[0]
            raise ValueError(
                f"Decision {bad[1]} must be in 0..{self.sizes[bad[1]] - 1}. Received: {array[tuple(bad)]}"
            )
        return tf.constant(array, tf.int32)

    def log_prob(self, decisions) -> tf.Tensor:
        """Log-probability [n] of decisions [n, D] (or one sequence [D]); differentiable."""
        return self._graphs.evaluate(tuple(self.trainable_variables), self._check_decisions(decisions))[0]

    def entropy(self, decisions) -> tf.Tensor:
        """Summed per-step policy entropy [n] along the given decision paths."""
        return self._graphs.evaluate(tuple(self.trainable_variables), self._check_decisions(decisions))[1]

    def probabilities(self, decisions) -> np.ndarray:
        """Probability of each given sequence (convenience for tests and reports)."""
        return np.exp(self.log_prob(decisions).numpy())
