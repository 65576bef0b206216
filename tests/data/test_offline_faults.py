"""An explicit data directory is read or rejected with the reason: never downloaded into, never left dirty.

TFDS is replaced by a recorder in most cases here, so that the test also proves which
calls were made (none with download=True for a named directory); one case lets the real
TFDS look at an empty directory, offline, to show it answers at once and writes nothing.
"""

import gzip
import os
import shutil
import time

import numpy as np
import pytest

from nasnet_keras import data
from nasnet_keras.data import sources

SYSTEM = "/usr/share/datasets/fashion-mnist"


def listing(path):
    return sorted(os.path.relpath(os.path.join(root, name), path)
                  for root, dirs, files in os.walk(path) for name in dirs + files)


def broken_dirs(tmp_path):
    """Data directories a user might name: each must be rejected with its own reason."""
    empty = tmp_path / "empty"
    empty.mkdir()
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    for name in os.listdir(SYSTEM):
        shutil.copy(os.path.join(SYSTEM, name), truncated / name)
    with open(truncated / "t10k-images-idx3-ubyte.gz", "r+b") as f:
        f.truncate(4000)
    train_only = tmp_path / "train_only"
    train_only.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        os.symlink(os.path.join(SYSTEM, name), train_only / name)
    not_idx = tmp_path / "not_idx"
    not_idx.mkdir()
    (not_idx / "t10k-images-idx3-ubyte").write_bytes(b"PK\x03\x04 a zip, not IDX")
    (not_idx / "t10k-labels-idx1-ubyte").write_bytes(b"")
    afile = tmp_path / "afile"
    afile.write_text("x")
    return {
        str(empty): "no t10k-images-idx3-ubyte",
        str(truncated): "cannot read IDX file",
        str(train_only): "no t10k-images-idx3-ubyte",
        str(not_idx): "not an IDX file",
        str(afile): "is not a directory",
        str(tmp_path / "missing"): "does not exist",
    }


def test_a_named_directory_is_never_downloaded_into(tmp_path, monkeypatch):
    calls = []

    def recorder(spec, split, data_dir, manual_dir):
        calls.append(("read", data_dir))
        raise AssertionError(f"could not find data in {data_dir}")

    def no_download(spec, data_dir, manual_dir, timeout):
        calls.append(("download", data_dir))
        raise AssertionError("a named directory was downloaded into")

    monkeypatch.setattr(sources, "_load_tfds", recorder)
    monkeypatch.setattr(sources, "_download_tfds", no_download)
    for directory, reason in broken_dirs(tmp_path).items():
        before = listing(tmp_path)
        with pytest.raises(data.DatasetNotFoundError) as error:
            data.load("fashion_mnist", "test", directory)
        message = str(error.value)
        assert message.startswith("Dataset 'fashion_mnist' (split 'test') could not be loaded")
        assert f"local IDX files in {directory}" in message and reason in message, message
        assert "(download=False)" in message
        assert listing(tmp_path) == before
    assert calls and all(kind == "read" for kind, _ in calls)
    # The same through the search split and the training plan's data (both read through `load`).
    with pytest.raises(data.DatasetNotFoundError):
        data.search_split("fashion_mnist", validation_size=10, subset=10, data_dir=str(tmp_path / "empty"))
    assert all(kind == "read" for kind, _ in calls)


def test_real_tfds_on_an_empty_directory_answers_at_once_and_writes_nothing(tmp_path):
    start = time.monotonic()
    with pytest.raises(data.DatasetNotFoundError, match="could not find data"):
        data.load("fashion_mnist", "train", str(tmp_path))
    assert time.monotonic() - start < 60
    assert listing(tmp_path) == []


def test_downloads_are_announced_and_only_when_no_directory_is_named(tmp_path, monkeypatch, capsys):
    calls = []
    prepared = set()

    def read(spec, split, data_dir, manual_dir):
        calls.append(("read", data_dir))
        if data_dir not in prepared:
            raise AssertionError("not prepared")
        return "downloaded"

    def download(spec, data_dir, manual_dir, timeout):
        calls.append(("download", data_dir))
        prepared.add(data_dir)

    monkeypatch.setattr(sources, "_load_tfds", read)
    monkeypatch.setattr(sources, "_download_tfds", download)
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "default"))
    # cifar10 has no local route: with no directory named, TFDS may download, and says so.
    assert data.load("cifar10", "test") == "downloaded"
    default = str(tmp_path / "default")
    assert calls == [("read", None), ("download", default), ("read", default)]
    err = capsys.readouterr().err
    assert "downloading and preparing it with TensorFlow Datasets into " + default in err
    assert "stops after 1800 s" in err
    calls.clear()
    with pytest.raises(data.DatasetNotFoundError):
        data.load("cifar10", "test", str(tmp_path))
    assert calls == [("read", str(tmp_path))]
    calls.clear()
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(tmp_path))  # a directory named by the environment
    with pytest.raises(data.DatasetNotFoundError):
        data.load("cifar10", "test")
    assert calls == [("read", str(tmp_path))]
    calls.clear()
    assert data.load("cifar10", "test", str(tmp_path), download=True) == "downloaded"  # asked explicitly
    assert calls == [("read", str(tmp_path)), ("download", str(tmp_path)), ("read", str(tmp_path))]
    assert capsys.readouterr().err.count("downloading") == 1


def test_a_good_named_directory_is_read(tmp_path):
    rng = np.random.RandomState(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        for kind, array in (("images-idx3-ubyte", rng.randint(0, 255, (n, 28, 28))),
                            ("labels-idx1-ubyte", rng.randint(0, 10, n))):
            header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
            with gzip.open(tmp_path / f"{prefix}-{kind}.gz", "wb") as f:
                f.write(header + array.astype(np.uint8).tobytes())
    images = [image.shape for image, _ in data.load("fashion_mnist", "test", str(tmp_path))]
    assert len(images) == 10 and images[0] == (28, 28, 1)
