"""Training under faults: wrong labels, divergence, a full disk, damaged checkpoints, foreign weights.

Each class has one mechanism (data.validation, training.divergence, training.checkpoint_faults,
model_files) and several cases here. The end-to-end cases run `nasnet train` in-process
on a tiny one-block genotype at 8x8 so that the whole run (build, trace, fit) stays short.
"""

import errno
import gzip
import io
import os
import shutil

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


class FillingDisk:
    """`open` for `fileio.copy_bytes` on a disk that fills: the first `good` binary files are written,
    then a file gets `budget` bytes (really written, so a partial exists) and its write --
    or, with `at_close`, its close -- raises OSError(code)."""

    def __init__(self, code, budget=0, good=0, at_close=False):
        self.code, self.budget, self.good, self.at_close, self.calls = code, budget, good, at_close, 0

    def __call__(self, path, mode="r", *args, **kwargs):
        if mode != "wb":  # fileio's text and JSON files (a run's manifest, its events)
            return open(path, mode, *args, **kwargs)
        self.calls += 1
        if self.calls <= self.good:
            return open(path, mode, *args, **kwargs)
        disk = self

        class Filling(io.FileIO):
            written = 0

            def write(self, data):
                room = max(disk.budget - self.written, 0)
                if not disk.at_close and len(data) > room:
                    self.written += super().write(bytes(data[:room]))
                    raise OSError(disk.code, os.strerror(disk.code))
                self.written += len(data)
                return super().write(data)

            def close(self):
                super().close()
                if disk.at_close:
                    raise OSError(disk.code, os.strerror(disk.code))

        return Filling(path, "wb")


@pytest.mark.parametrize("code, budget, at_close", [
    (errno.ENOSPC, 0, False),  # the disk is full at the first byte
    (errno.ENOSPC, 10_000, False),  # it fills in the middle of the file (after a few chunks)
    (errno.ENOSPC, 0, True),  # the last bytes fail when the file is closed (flushed)
    (errno.EDQUOT, 5_000, False),
    (errno.EIO, 5_000, False),
])
def test_a_checkpoint_write_that_fails_at_any_point_stops_cleanly_and_keeps_the_last_good_one(
        tmp_path, monkeypatch, code, budget, at_close):
    from nasnet_keras import fileio

    model = model_at(2)
    run = RunDirectory(tmp_path / "run")
    good = run.save(model, 2)
    before = snapshot(run.path)
    monkeypatch.setattr(fileio, "_CHUNK", 4096)
    monkeypatch.setattr(fileio, "open", FillingDisk(code, budget, at_close=at_close), raising=False)
    callback = CheckpointCallback(run)
    callback.set_model(model)
    with pytest.raises(CheckpointWriteFailed) as failure:
        callback._save(4)
    message = str(failure.value)
    assert os.strerror(code) in message and "ckpt-000000004.weights.h5" in message, message
    assert f"{os.path.basename(good)} (step 2), is kept" in message and "run the same command again" in message
    assert snapshot(run.path) == before  # partial removed, the good checkpoint untouched
    assert sorted(os.listdir(run.file("checkpoints"))) == [os.path.basename(good)]


def test_a_train_run_whose_disk_fills_after_the_free_space_check_exits_1_with_the_reason(
        tmp_path, monkeypatch, capsys):
    """End to end: checkpoints 1 and 2 are written, the disk fills during checkpoint 3."""
    from nasnet_keras import fileio

    disk = FillingDisk(errno.ENOSPC, budget=3000, good=2)
    monkeypatch.setattr(fileio, "open", disk, raising=False)
    code = cli.main(train_argv(tmp_path, idx_dir(tmp_path / "data"), "--save-every-steps", "1"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1, err
    assert err[-1].startswith("nasnet train: error: Could not write checkpoint "), err
    assert "ckpt-000000003.weights.h5' (step 3): No space left on device" in err[-1]
    assert "ckpt-000000002.weights.h5 (step 2), is kept" in err[-1]
    run = RunDirectory(tmp_path / "run")
    assert [step for step, _ in run.checkpoints()] == [1, 2] and disk.calls == 3
    assert not [name for name in os.listdir(run.file("checkpoints")) if fileio.is_partial(name)]
    assert not os.path.exists(run.file("final.keras"))
    from nasnet_keras.model_files import weights_genotype_id

    assert weights_genotype_id(run.checkpoints()[-1][1]) == CELL.id  # the kept checkpoint is intact HDF5


def test_a_real_full_tmpfs_stops_the_write_cleanly(tmp_path, monkeypatch):
    """A small tmpfs: the kernel's own ENOSPC, during the byte copy (`make test` runs as root, as its
    Debian installs need; the injected-ENOSPC tests above cover the same code path everywhere)."""
    import subprocess

    from nasnet_keras.training import checkpoint_faults

    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                             text=True)
    # No skip: a suite that quietly drops its one real-disk test would hide a broken write path.
    assert mounted.returncode == 0, (
        f"could not mount a 1 MiB tmpfs at {mount} ({mounted.stderr.strip() or 'mount refused'}): this test needs "
        "root (or CAP_SYS_ADMIN), as `make test`'s Debian installs do; run it as root, e.g. `sudo make test`")
    try:
        model = model_at(2)
        run = RunDirectory(mount / "run")
        good = run.save(model, 2)
        filler = mount / "filler"
        with open(filler, "wb") as f:  # leave less room than a checkpoint takes
            f.write(b"\0" * (shutil.disk_usage(mount).free - os.path.getsize(good) // 2))
        before = snapshot(run.path)
        # Let the write start as if the disk had room at the check: it fills during the copy.
        monkeypatch.setattr(checkpoint_faults, "_free_bytes", lambda folder: None)
        model.optimizer.iterations.assign(4)
        with pytest.raises(CheckpointWriteFailed, match=r"ckpt-000000004.weights.h5' \(step 4\): No space left on "
                                                        r"device. The partial file was removed"):
            run.save(model, 4)
        assert snapshot(run.path) == before
        assert run.restore(model_at(0)) == 2
        # With the check in place the same write is refused before anything is written.
        monkeypatch.undo()
        with pytest.raises(CheckpointWriteFailed, match=r"No space left on device \([\d,]+ bytes free, [\d,]+ needed\); "
                                                        r"nothing was written"):
            run.save(model, 4)
        assert snapshot(run.path) == before
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_checkpoint_that_cannot_fit_is_refused_before_it_is_written(tmp_path, monkeypatch):
    from nasnet_keras.training import checkpoint_faults

    model = model_at(2)
    run = RunDirectory(tmp_path / "run")
    good = run.save(model, 2)
    before = snapshot(run.path)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(checkpoint_faults.shutil, "disk_usage", lambda path: usage._replace(free=4096))
    model.optimizer.iterations.assign(4)
    with pytest.raises(CheckpointWriteFailed, match=r"No space left on device \(4,096 bytes free, [\d,]+ needed\); "
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
