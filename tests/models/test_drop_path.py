"""ScheduledDropPath: statistics, rescaling, identity paths, inference, and the schedule."""

import keras
import numpy as np
import pytest

import nasnet_keras
from nasnet_keras.drop_path import ScheduledDropPath, ScheduledDropPathCallback, drop_path_layers
from nasnet_keras.genotype import Genotype


@pytest.mark.parametrize("max_rate, progress", [(0.4, 1.0), (0.5, 0.6), (0.2, 0.25)])
def test_kept_fraction_and_rescaling(max_rate, progress):
    layer = ScheduledDropPath(max_rate, seed=1)
    layer.progress.assign(progress)
    p = max_rate * progress
    n = 40_000
    out = np.asarray(layer(np.ones((n, 2, 2, 3), "float32"), training=True))
    kept = out.reshape(n, -1)
    # A whole path is kept or dropped per example.
    assert np.all((kept == 0).all(axis=1) | (kept != 0).all(axis=1))
    fraction = (kept[:, 0] != 0).mean()
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(fraction - (1 - p)) < 4 * sigma
    np.testing.assert_allclose(kept[kept[:, 0] != 0], 1.0 / (1.0 - p), rtol=1e-5)  # expectation preserved


def test_inference_is_identity_and_deterministic():
    layer = ScheduledDropPath(0.9)
    layer.progress.assign(1.0)
    x = np.random.default_rng(0).normal(size=(64, 3, 3, 2)).astype("float32")
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    np.testing.assert_array_equal(np.asarray(layer(x)), x)


def test_cells_drop_every_non_identity_path_and_never_identity():
    genotype = Genotype.from_blocks(
        [(0, 1, "identity", "sep_conv_3x3"), (0, 0, "identity", "identity"), (2, 1, "avg_pool_3x3", "identity")],
        [(0, 1, "identity", "max_pool_3x3"), (2, 2, "identity", "conv_3x3"), (3, 0, "identity", "identity")],
    )
    model = nasnet_keras.NASNetCIFAR(input_shape=(8, 8, 3), num_blocks=1, filters=4, genotype=genotype,
                                     drop_path_keep_prob=0.5, include_top=False)
    for cell in (layer for layer in model.layers if isinstance(layer, nasnet_keras.NASNetCell)):
        ops = [op for block in cell.genotype.blocks for op in block.ops]
        dropped = sorted(int(k) for k in cell.path_drops)
        assert dropped == [k for k, op in enumerate(ops) if op != "identity"]

    # Block 1 of the normal cell is identity + identity: with drop rates near 1 on every
    # other path, its output (state 3) is still exactly 2 * state 0 in training mode.
    cell = model.get_layer("normal_cell_0")
    for layer in drop_path_layers(model):
        layer.progress.assign(1.0)
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 12)).astype("float32")
    h = cell.bn_1(cell.conv_1(keras.ops.relu(x)), training=True)
    out = np.asarray(cell(x, training=True))
    assert cell.genotype.concat == (3, 4)  # output = [state 3, state 4]
    np.testing.assert_allclose(out[..., :4], 2 * np.asarray(h), atol=1e-5)


def test_rates_scale_with_cell_depth():
    keep = 0.6
    model = nasnet_keras.NASNetCIFAR(input_shape=(8, 8, 3), num_blocks=1, filters=4, drop_path_keep_prob=keep)
    cells = [layer for layer in model.layers if isinstance(layer, nasnet_keras.NASNetCell)]
    total = len(cells)
    for index, cell in enumerate(cells):
        expected = (index + 1) / total * (1 - keep)
        assert cell.drop_path_max_rate == pytest.approx(expected)
        assert all(d.max_rate == pytest.approx(expected) for d in cell.path_drops.values())
    assert cells[-1].drop_path_max_rate == pytest.approx(1 - keep)


def test_callback_advances_progress_linearly_from_the_optimizer_step():
    model = nasnet_keras.NASNetCIFAR(input_shape=(8, 8, 1), num_blocks=1, filters=2, classes=2,
                                     drop_path_keep_prob=0.5)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    x = np.zeros((8, 8, 8, 1), "float32")
    y = np.zeros((8,), "int32")
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(drop_path_layers(self.model)[0].progress.numpy()))

    total_steps = 6
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[ScheduledDropPathCallback(total_steps), Probe()])
    # 4 steps per epoch, 8 steps: progress = min(1, step / 6) at each step's start.
    assert seen == pytest.approx([min(1.0, s / total_steps) for s in range(8)])
    layers = drop_path_layers(model)
    assert all(float(layer.progress.numpy()) == 1.0 for layer in layers)
    assert float(layers[-1].rate.numpy()) == pytest.approx(0.5)


def test_callback_rejects_bad_total_steps():
    with pytest.raises(ValueError, match="`total_steps` must be a positive integer. Received: total_steps=0"):
        ScheduledDropPathCallback(0)
    with pytest.raises(ValueError, match=r"`max_rate` must be in \[0, 1\)"):
        ScheduledDropPath(1.0)
