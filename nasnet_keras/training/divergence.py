"""A diverged training run fails, with the reason, and keeps its last finite checkpoint.

Without a guard a run whose loss became NaN (a learning rate far too high, say) trains on
for every remaining step, checkpoints NaN weights over the good ones, saves a NaN
`final.keras` and exits 0. Two checks prevent that:

* `DivergenceGuard` (placed before the checkpoint callback) stops at the first batch whose
  loss is not finite, before anything is written for that step;
* `check_finite_weights` is called before each checkpoint is written: a step can produce
  NaN weights from a finite loss (the update itself overflows), and such weights must
  not replace the last good checkpoint.

Both raise `TrainingDiverged` (a `nasnet_keras.errors.RunFailed`: `nasnet train` exits 1
with its message). Search children have their own handling (a failed trial).
"""

from __future__ import annotations

import math
import os

import keras
import numpy as np

from nasnet_keras.errors import RunFailed


class TrainingDiverged(RunFailed):
    """The loss or the weights of a training run became NaN or infinite."""


def _kept(run_dir) -> str:
    latest = run_dir.latest_checkpoint() if run_dir is not None else None
    if latest is None:
        return "No checkpoint had been written yet."
    return f"The last finite checkpoint, {os.path.basename(latest[1])} (step {latest[0]}), is kept."


def _advice() -> str:
    return ("Lower the learning rate (--set base_learning_rate=...) or enable gradient clipping "
            "(--set clip_global_norm=...), and train in a new --directory (or with --overwrite)")


def _step(model) -> int:
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def check_finite_weights(model, run_dir=None) -> None:
    """Raise TrainingDiverged naming the first variable of `model` holding NaN or infinity."""
    for variable in model.weights:
        if not np.all(np.isfinite(keras.ops.convert_to_numpy(variable))):
            raise TrainingDiverged(
                f"Training diverged at step {_step(model)}: weight {variable.path!r} holds NaN or infinite values, "
                f"so no checkpoint was written for this step. {_kept(run_dir)} {_advice()}"
            )


class DivergenceGuard(keras.callbacks.Callback):
    """Stops `fit` at the first batch with a non-finite loss, by raising `TrainingDiverged`."""

    def __init__(self, run_dir=None):
        super().__init__()
        self.run_dir = run_dir

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        value = float(np.asarray(keras.ops.convert_to_numpy(loss)))
        if not math.isfinite(value):
            learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            raise TrainingDiverged(
                f"Training diverged at step {_step(self.model)}: the loss is {value} (learning rate "
                f"{learning_rate:g}). {_kept(self.run_dir)} {_advice()}"
            )


def check_finite_metrics(metrics: dict, run_dir=None) -> None:
    """Raise TrainingDiverged if an evaluation metric is NaN or infinite (a summary must be valid JSON)."""
    bad = {key: value for key, value in metrics.items() if not math.isfinite(value)}
    if bad:
        raise TrainingDiverged(
            f"The evaluation gave non-finite {', '.join(f'{k}={v}' for k, v in sorted(bad.items()))}: the trained "
            f"weights do not compute finite outputs, so final.keras was not written. {_kept(run_dir)} {_advice()}"
        )
