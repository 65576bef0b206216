"""ScheduledDropPath as the trainer sets it up: rates linear in depth, probability linear in steps."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from nasnet_keras import NASNetCell, ScheduledDropPath, ScheduledDropPathCallback, variants
from nasnet_keras.drop_path import drop_path_layers
from nasnet_keras.training import RunDirectory, compile_for_recipe, get_recipe
from nasnet_keras.training.models import build_model, resolve_model
from nasnet_keras.training.trainer import TrainConfig, _callbacks


def test_the_cifar_recipe_model_drops_paths_up_to_0_4_in_the_last_cell_and_decays_weights():
    spec = resolve_model("cifar_6@768", "cifar_6@768", num_blocks=1, filters=4)
    recipe = get_recipe("cifar")
    model = build_model(spec, (8, 8, 1), 10, recipe.model_overrides(variants.get(spec.variant).training_kwargs()))
    assert list(model.output_names) == ["predictions", "aux_predictions"]
    cells = [layer for layer in model.layers if isinstance(layer, NASNetCell)]
    assert len(cells) == 5  # N normal, reduction, N normal, reduction, N normal with N = 1
    for index, cell in enumerate(cells):
        rates = [layer.max_rate for layer in drop_path_layers(cell)]
        assert rates and rates == [pytest.approx((index + 1) / 5 * (1 - 0.6))] * len(rates)
    # L2 weight decay 5e-4 on every kernel, in TF-slim's convention wd * sum(w**2) / 2.
    kernels = [w for w in model.trainable_weights if w.path.endswith("kernel")]
    l2 = sum(5e-4 / 2 * float(np.sum(keras.ops.convert_to_numpy(w) ** 2)) for w in kernels)
    penalty = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    assert len(model.losses) == len(kernels) and penalty == pytest.approx(l2, rel=1e-5)


class ProgressProbe(keras.callbacks.Callback):
    def __init__(self, layer):
        super().__init__()
        self.layer, self.seen = layer, []

    def on_train_batch_begin(self, batch, logs=None):
        self.seen.append((float(self.layer.progress.numpy()), float(keras.ops.convert_to_numpy(self.layer.rate))))


def test_drop_probability_rises_linearly_with_the_step(tmp_path):
    inputs = keras.Input((2, 2, 1))
    drop = ScheduledDropPath(0.4)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(keras.layers.Flatten()(drop(inputs)))
    model = keras.Model(inputs, outputs)
    compile_for_recipe(model, get_recipe("cifar", aux_loss_weight=0.0), 10, jit_compile=False)
    run = RunDirectory(tmp_path)
    callbacks = _callbacks(model, run, TrainConfig(), resume=False, total_steps=20)
    assert isinstance(callbacks[0], ScheduledDropPathCallback) and callbacks[0].total_steps == 20
    probe = ProgressProbe(drop)
    x = np.ones((12, 2, 2, 1), "float32")
    y = np.eye(3, dtype="float32")[[0, 1, 2] * 4]
    history = model.fit(x, y, batch_size=2, epochs=1, callbacks=callbacks[:2] + [probe] + callbacks[2:], verbose=0)
    assert probe.seen == [(pytest.approx(k / 20), pytest.approx(0.4 * k / 20)) for k in range(6)]
    start = run.events()[0]
    assert start["event"] == "start" and start["step"] == 0 and start["drop_path_progress"] == 0.0
    # The schedules' positions reach the history, the CSV log and TensorBoard.
    assert history.history["drop_path_progress"] == [pytest.approx(5 / 20)]
    with open(run.file("history.csv")) as f:
        assert "drop_path_progress" in f.readline()
    tags = set()
    for path in glob.glob(os.path.join(run.file("logs"), "train", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    assert {"epoch_loss", "epoch_learning_rate", "epoch_drop_path_progress"} <= tags
