"""Training under faults: wrong labels, divergence, a full disk, damaged checkpoints, foreign weights.

Each class has one mechanism (data.validation, training.divergence, training.checkpoint_faults,
model_files) and several cases here. The end-to-end cases run `nasnet train` in-process
on a tiny one-block genotype at 8x8 so that the whole run (build, trace, fit) stays short.
"""

import errno
import gzip
import os

import h5py
import keras
import numpy as np
import pytest

from nasnet_keras import Genotype, cli, data
from nasnet_keras.data.validation import assert_labels_in_range
from nasnet_keras.training import CheckpointCallback, ImageNetRecipe, RunDirectory, compile_for_recipe
from nasnet_keras.training.checkpoint_faults import CheckpointWriteFailed
from nasnet_keras.training.divergence import DivergenceGuard, TrainingDiverged
from training_helpers import batch, snapshot, two_head_model

CELL = Genotype.from_blocks(normal=[(0, 1, "sep_conv_3x3", "identity")],
                            reduction=[(0, 1, "sep_conv_3x3", "max_pool_3x3")], name="tiny")


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def idx_dir(path, train_labels=None, test_labels=None, n_train=32, n_test=16):
    """A Fashion-MNIST-shaped IDX directory with random images and the given labels."""
    os.makedirs(path, exist_ok=True)
    rng = np.random.RandomState(0)
    for prefix, n, labels in (("train", n_train, train_labels), ("t10k", n_test, test_labels)):
        write_idx(os.path.join(path, f"{prefix}-images-idx3-ubyte.gz"), rng.randint(0, 255, (n, 28, 28)))
        labels = rng.randint(0, 10, n) if labels is None else np.broadcast_to(labels, (n,))
        write_idx(os.path.join(path, f"{prefix}-labels-idx1-ubyte.gz"), np.asarray(labels))
    return str(path)


def train_argv(tmp_path, data_dir, *extra):
    (tmp_path / "tiny.json").write_text(CELL.to_json())
    return ["train", "--model", str(tmp_path / "tiny.json"), "--base-variant", "cifar_6@768", "--dataset",
            "fashion_mnist", "--data-dir", data_dir, "--directory", str(tmp_path / "run"), "--num-blocks", "1",
            "--filters", "2", "--image-size", "8", "--set", "epochs=1", "--set", "batch_size=8",
            "--set", "train_split=train[:32]", "--set", "eval_split=test[:16]", "--set", "cutout_size=0",
            "--set", "aux_loss_weight=0", "--verbose", "0", "--no-tensorboard", *extra]


# --- 1. silent wrong results: labels outside 0..classes-1 ---------------------------------------
@pytest.mark.parametrize("train_labels, test_labels, bad", [
    (200, None, "200"),  # every training label
    (np.r_[np.zeros(31, int), 10], None, "10 (first at index 31)"),  # one label just past the last class
    (None, 255, "255"),  # only the evaluation split
])
def test_labels_out_of_range_fail_before_anything_is_written(tmp_path, capsys, train_labels, test_labels, bad):
    data_dir = idx_dir(tmp_path / "data", train_labels, test_labels)
    code = cli.main(train_argv(tmp_path, data_dir))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "labels outside 0..9" in err[0] and bad in err[0] and data_dir in err[0]
    assert not (tmp_path / "run").exists()
    if train_labels is not None:  # the search reads through the same layer
        with pytest.raises(ValueError, match="labels outside 0..9"):
            data.search_split("fashion_mnist", validation_size=8, subset=24, data_dir=data_dir)


def test_streamed_labels_are_checked_in_the_pipeline():
    import tensorflow as tf

    good = assert_labels_in_range(tf.data.Dataset.from_tensor_slices((np.zeros((3, 2)), [0, 9, 3])), 10, "x")
    assert [int(label) for _, label in good] == [0, 9, 3]
    for labels in ([0, 10, 1], [-1, 0, 0]):
        ds = assert_labels_in_range(tf.data.Dataset.from_tensor_slices((np.zeros((3, 2)), labels)), 10, "x")
        with pytest.raises(tf.errors.InvalidArgumentError, match="a label is outside 0..9"):
            list(ds)


# --- 1. silent wrong results: divergence --------------------------------------------------------
def test_a_diverged_run_fails_keeps_its_finite_checkpoints_and_prints_no_summary(tmp_path, capsys):
    data_dir = idx_dir(tmp_path / "data")
    code = cli.main(train_argv(tmp_path, data_dir, "--set", "base_learning_rate=1e30", "--save-every-steps", "1"))
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == 1, captured
    assert err[-1].startswith("nasnet train: error: Training diverged at step "), err
    assert "Lower the learning rate" in err[-1]
    assert "{" not in captured.out  # no summary (it would hold NaN)
    run = RunDirectory(tmp_path / "run")
    assert not os.path.exists(run.file("final.keras"))
    for _, path in run.checkpoints():
        with h5py.File(path) as f:
            f.visititems(lambda name, item: isinstance(item, h5py.Dataset)
                         and np.all(np.isfinite(item[()])) or isinstance(item, h5py.Group) or pytest.fail(name))


def test_the_guard_stops_at_the_first_non_finite_loss_and_the_last_checkpoint_is_kept(tmp_path):
    keras.utils.set_random_seed(0)
    model = two_head_model(aux=False)
    compile_for_recipe(model, ImageNetRecipe(base_learning_rate=0.01), 5, jit_compile=False)
    x, y = batch(32)
    y[24:] = np.nan  # batch 4 of 8 examples: the loss becomes NaN at step 4
    run = RunDirectory(tmp_path / "run")
    callbacks = [DivergenceGuard(run), CheckpointCallback(run, every_steps=1)]
    with pytest.raises(TrainingDiverged, match=r"at step 4: the loss is nan.*ckpt-000000003.weights.h5 \(step 3\)"):
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, callbacks=callbacks, verbose=0)
    assert [step for step, _ in run.checkpoints()] == [2, 3]
    # NaN weights (an update that overflowed with a finite loss) never replace a good checkpoint.
    model.get_layer("hidden").kernel.assign(np.full((6, 8), np.inf, "float32"))
    with pytest.raises(TrainingDiverged, match=r"weight 'hidden/kernel' holds NaN or infinite values"):
        callbacks[1]._save(5)
    assert [step for step, _ in run.checkpoints()] == [2, 3]


# --- 5. disk full and damaged checkpoints ------------------------------------------------------
def model_at(step: int):
    """A compiled model whose optimizer is built and at `step` (no fit: nothing to trace)."""
    keras.utils.set_random_seed(step)
    model = two_head_model(aux=False)
    compile_for_recipe(model, ImageNetRecipe(base_learning_rate=0.01), 5, jit_compile=False)
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(step)
    return model


@pytest.mark.parametrize("error, reason", [
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "Disk quota exceeded"),
    (OSError(errno.EIO, "Input/output error"), "Input/output error"),
    (RuntimeError("Can't write data (file write failed: time = x, filename = 'p', errno = 28, error message = "
                  "'No space left on device')"), "No space left on device"),  # how h5py reports it
])
def test_a_failed_checkpoint_write_stops_cleanly_and_keeps_the_last_good_one(tmp_path, monkeypatch, error, reason):
    model = model_at(2)
    run = RunDirectory(tmp_path / "run")
    good = run.save(model, 2)
    before = snapshot(run.path)

    def full_disk(path, overwrite=True):
        with open(path, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n half of a file")
        raise error

    monkeypatch.setattr(model, "save_weights", full_disk)
    callback = CheckpointCallback(run)
    callback.set_model(model)
    with pytest.raises(CheckpointWriteFailed) as failure:
        callback._save(4)
    message = str(failure.value)
    assert reason in message and "ckpt-000000004.weights.h5" in message
    assert f"{os.path.basename(good)} (step 2), is kept" in message and "run the same command again" in message
    assert snapshot(run.path) == before  # partial removed, the good checkpoint untouched
    assert sorted(os.listdir(run.file("checkpoints"))) == [os.path.basename(good)]


def test_a_checkpoint_that_cannot_fit_is_refused_before_it_is_written(tmp_path, monkeypatch):
    import shutil

    from nasnet_keras.training import checkpoint_faults

    model = model_at(2)
    run = RunDirectory(tmp_path / "run")
    good = run.save(model, 2)
    before = snapshot(run.path)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(checkpoint_faults.shutil, "disk_usage", lambda path: usage._replace(free=4096))
    model.optimizer.iterations.assign(4)
    with pytest.raises(CheckpointWriteFailed, match=r"No space left on device \(4,096 bytes free, about .* needed\); "
                                                    rf"nothing was written and the last good checkpoint, "
                                                    rf"{os.path.basename(good)} \(step 2\), is kept"):
        run.save(model, 4)
    assert snapshot(run.path) == before


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path, damage):
    run = RunDirectory(tmp_path / "run")
    paths = [run.save(model_at(step), step, keep=3) for step in (2, 4, 6)]
    intact, latest = paths[1], paths[2]
    size = os.path.getsize(latest)
    with open(latest, "r+b") as f:
        if damage == "truncate":
            f.truncate(size // 2)
        elif damage == "empty":
            f.truncate(0)
        else:
            f.write(os.urandom(size))
    with pytest.warns(UserWarning) as warned:
        step = run.restore(model_at(0))
    text = str(warned[0].message)
    assert latest in text and intact in text and "damaged" in text
    assert step == 4
    for _, other in run.checkpoints():
        with open(other, "r+b") as f:
            f.truncate(10)
    with pytest.raises(ValueError, match="Every checkpoint in .* is damaged"):
        run.restore(model_at(0))


def test_a_checkpoint_of_another_genotype_is_refused_by_name(tmp_path):
    from nasnet_keras import NASNetCIFAR

    kwargs = dict(input_shape=(8, 8, 3), num_blocks=1, filters=2, classes=3, weights=None)
    source = NASNetCIFAR(genotype=CELL, **kwargs)
    source.compile(optimizer="sgd", loss="categorical_crossentropy")
    run = RunDirectory(tmp_path / "run")
    path = run.save(source, 1)
    # Same weights' shapes (only a weight-free pooling differs): Keras alone would load it silently.
    other = Genotype.from_blocks(normal=[(0, 1, "sep_conv_3x3", "identity")],
                                 reduction=[(0, 1, "sep_conv_3x3", "avg_pool_3x3")], name="other")
    target = NASNetCIFAR(genotype=other, **kwargs)
    target.compile(optimizer="sgd", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match=rf"written for genotype \[{CELL.id}\].*has genotype \[{other.id}\]"):
        run.restore(target)
    with pytest.raises(ValueError, match=rf"{os.path.basename(path)}.*genotype \[{CELL.id}\]"):
        from nasnet_keras.applications import load_weights

        load_weights(target, path)
    load_weights(NASNetCIFAR(genotype=CELL, **kwargs), path)  # the right architecture loads
