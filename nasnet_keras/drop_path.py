"""ScheduledDropPath (paper Sec. 4, App. A.5): a layer plus the callback that schedules it.

TF-slim's "v3" formula, per path in cell `c` of `C` cells at training progress
`t = min(1, step / total_steps)`:

    drop_rate = t * ((c + 1) / C) * (1 - drop_path_keep_prob)

Each example keeps or drops the whole path (mask shape [batch, 1, 1, 1]); kept paths
are divided by the keep probability so the expectation is unchanged. Identity paths are
never given a drop-path layer, and inference is the identity.

The schedule position is an explicit, saved variable of the layer (`progress`), advanced
by `ScheduledDropPathCallback` from the optimizer's iteration count: the schedule is a
function of the training step, so a resumed run continues where it stopped.
"""

from __future__ import annotations

import keras
from keras import layers

from nasnet_keras.layer_tree import walk


@keras.saving.register_keras_serializable(package="nasnet_keras")
class ScheduledDropPath(layers.Layer):
    """Drops a whole path per example with probability `progress * max_rate`.

    Args:
        max_rate: the drop rate reached at the end of training for this path, i.e.
            `((cell_index + 1) / total_cells) * (1 - drop_path_keep_prob)`.
        seed: optional seed for the per-example masks.
    """

    def __init__(self, max_rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= max_rate < 1.0:
            raise ValueError(f"`max_rate` must be in [0, 1). Received: max_rate={max_rate}")
        self.max_rate = float(max_rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.progress = self.add_weight(
            shape=(),
            initializer="zeros",
            trainable=False,
            name="progress",
            aggregation="only_first_replica",
        )

    @property
    def rate(self):
        """Current drop probability (a scalar tensor)."""
        return self.progress * self.max_rate

    def call(self, x, training=None):
        if not training or self.max_rate == 0.0:
            return x
        keep = 1.0 - keras.ops.cast(self.rate, x.dtype)
        batch = keras.ops.shape(x)[0]
        noise = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator, dtype=x.dtype)
        mask = keras.ops.floor(keep + noise)
        return x / keep * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"max_rate": self.max_rate, "seed": self.seed})
        return config


def drop_path_layers(model: keras.Model) -> list[ScheduledDropPath]:
    """Every ScheduledDropPath inside `model`, nested cells included."""
    return [layer for layer in walk(model) if isinstance(layer, ScheduledDropPath)]


class ScheduledDropPathCallback(keras.callbacks.Callback):
    """Advances every ScheduledDropPath of the model linearly from 0 to its max rate.

    `progress = min(1, step / total_steps)` where `step` is the optimizer's iteration
    count before the batch, so the schedule survives checkpoint/resume with the optimizer.
    """

    def __init__(self, total_steps: int):
        super().__init__()
        if int(total_steps) <= 0:
            raise ValueError(f"`total_steps` must be a positive integer. Received: total_steps={total_steps}")
        self.total_steps = int(total_steps)
        self._variables = []

    def on_train_begin(self, logs=None):
        self._variables = [layer.progress for layer in drop_path_layers(self.model)]
        self._assign()

    def on_train_batch_begin(self, batch, logs=None):
        self._assign()

    def progress(self) -> float:
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        return min(1.0, step / self.total_steps)

    def _assign(self):
        if not self._variables:
            return
        value = self.progress()
        for variable in self._variables:
            variable.assign(value)
