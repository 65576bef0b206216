"""nasnet_keras.data on the real Fashion-MNIST IDX files (Debian's dataset-fashion-mnist).

Only small slices are read into tf.data; the IDX reader decompresses the files once per
process (cached), so the whole module takes a few seconds.
"""

import gzip
import hashlib
import os

import numpy as np
import pytest
import tensorflow as tf

from nasnet_keras import data
from nasnet_keras.data import idx

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz")

# No skip when the files are missing: `make test` installs them (`make data`), and a
# silent skip would hide a missing install step. The loader's own error says what to do.


def _digests(ds):
    return sorted(hashlib.sha1(image.numpy().tobytes() + label.numpy().tobytes()).hexdigest() for image, label in ds)


def _link_files(directory):
    os.makedirs(directory, exist_ok=True)
    for name in FILES:
        os.symlink(os.path.join(FASHION_DIR, name), os.path.join(directory, name))


def test_info_is_static_and_complete():
    info = data.info("fashion_mnist")
    assert info.num_classes == 10
    assert info.image_shape == (28, 28, 1)
    assert info.splits == {"train": 60_000, "test": 10_000}
    assert info.class_names[0] == "T-shirt/top" and len(info.class_names) == 10
    assert data.info("cifar10").splits["train"] == 50_000  # answers offline, without the data


def test_load_reads_the_real_files_as_uint8_and_int64():
    ds = data.load("fashion_mnist", "train[:100]")
    assert ds.element_spec[0] == tf.TensorSpec((28, 28, 1), tf.uint8)
    assert ds.element_spec[1].dtype == tf.int64
    images = np.stack([image.numpy() for image, _ in ds])
    labels = np.array([label.numpy() for _, label in ds])
    raw_images = idx.read_idx(os.path.join(FASHION_DIR, "train-images-idx3-ubyte.gz"))
    raw_labels = idx.read_idx(os.path.join(FASHION_DIR, "train-labels-idx1-ubyte.gz"))
    assert raw_images.shape == (60_000, 28, 28) and raw_labels.shape == (60_000,)
    np.testing.assert_array_equal(images[..., 0], raw_images[:100])
    np.testing.assert_array_equal(labels, raw_labels[:100])
    assert set(labels) <= set(range(10)) and len(set(labels)) > 5  # real, varied labels
    assert int(data.load("fashion_mnist", "test[:1%]").cardinality()) == 100


def test_data_dir_and_environment_variable_routes(tmp_path, monkeypatch):
    explicit = tmp_path / "explicit"
    _link_files(explicit)
    first = next(iter(data.load("fashion_mnist", "test[:1]", data_dir=str(explicit))))
    # The environment variable may point at a parent holding a fashion-mnist/ folder.
    _link_files(tmp_path / "env" / "fashion-mnist")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "env"))
    second = next(iter(data.load("fashion_mnist", "test[:1]")))
    np.testing.assert_array_equal(first[0].numpy(), second[0].numpy())


def test_missing_data_lists_every_route_and_how_to_get_it(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load("fashion_mnist", "train", data_dir=str(empty), download=False)
    error = info.value
    assert isinstance(error, FileNotFoundError) and isinstance(error, ValueError)
    message = str(error)
    assert "'fashion_mnist'" in message
    assert f"1. local IDX files in {empty}" in message
    assert "2. TensorFlow Datasets 'fashion_mnist'" in message and "download=False" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "NASNET_KERAS_DATA_DIR" in message and "tfds.load('fashion_mnist'" in message


def test_corrupt_file_is_reported_as_a_failed_route(tmp_path):
    for name in FILES[:2]:
        with gzip.open(tmp_path / name, "wb") as f:
            f.write(b"not an idx file at all")
    with pytest.raises(data.DatasetNotFoundError, match="not an IDX file"):
        data.load("fashion_mnist", "train", data_dir=str(tmp_path), download=False)


def test_unknown_names_and_splits_are_clear_errors():
    with pytest.raises(ValueError, match=r"Unknown dataset 'imagenet21k'.*cifar10.*fashion_mnist"):
        data.load("imagenet21k", "train")
    with pytest.raises(ValueError, match=r"Unknown dataset 'cifar-10'"):
        data.info("cifar-10")
    with pytest.raises(ValueError, match=r"has no split 'validation'.*train, test"):
        data.load("fashion_mnist", "validation")
    with pytest.raises(ValueError, match=r"Invalid split 'train\[::2\]'"):
        data.load("fashion_mnist", "train[::2]")


def test_search_split_comes_only_from_the_training_split_and_is_disjoint():
    train, validation = data.search_split("fashion_mnist", validation_size=50, subset=150, seed=3)
    assert int(train.cardinality()) == 150 and int(validation.cardinality()) == 50
    train_digests, validation_digests = _digests(train), _digests(validation)
    assert not set(train_digests) & set(validation_digests)
    # Together they are exactly the first 200 training examples: no test image, none lost.
    assert sorted(train_digests + validation_digests) == _digests(data.load("fashion_mnist", "train[:200]"))
    # Deterministic: a second pass (and another process with the same seed) sees the same split.
    assert _digests(validation) == validation_digests
    other_train, other_validation = data.search_split("fashion_mnist", validation_size=50, subset=150, seed=4)
    assert _digests(other_validation) != validation_digests


def test_search_split_rejects_impossible_sizes():
    with pytest.raises(ValueError, match=r"validation_size=0"):
        data.search_split("fashion_mnist", validation_size=0)
    with pytest.raises(ValueError, match=r"validation_size=60000"):
        data.search_split("fashion_mnist", validation_size=60_000)
    with pytest.raises(ValueError, match=r"exceeds the 60000 training examples"):
        data.search_split("fashion_mnist", validation_size=5000, subset=59_000)


def test_pipeline_whitens_pads_crops_and_keeps_grayscale():
    ds = data.load("fashion_mnist", "train[:64]")
    images, labels = next(iter(data.pipeline(ds, 64, training=False)))
    assert images.shape == (64, 28, 28, 1) and images.dtype == tf.float32 and labels.dtype == tf.int64
    np.testing.assert_allclose(tf.reduce_mean(images, axis=[1, 2, 3]).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(tf.math.reduce_std(images, axis=[1, 2, 3]).numpy(), 1.0, atol=1e-3)
    train = data.pipeline(ds, 64, training=True, seed=1, shuffle_buffer=1)  # buffer 1: fixed order
    epoch_1, epoch_2 = next(iter(train))[0].numpy(), next(iter(train))[0].numpy()
    assert epoch_1.shape == (64, 28, 28, 1)
    assert not np.allclose(epoch_1, images.numpy())  # crops/flips moved pixels
    assert not np.allclose(epoch_1, epoch_2)  # new crops and flips every epoch...
    again = next(iter(data.pipeline(ds, 64, training=True, seed=1, shuffle_buffer=1)))[0].numpy()
    np.testing.assert_array_equal(epoch_1, again)  # ...yet reproducible from the seed
    small, _ = next(iter(data.pipeline(ds, 8, training=False, image_size=16)))
    assert small.shape == (8, 16, 16, 1)
    with pytest.raises(ValueError, match="batch_size=0"):
        data.pipeline(ds, 0, training=False)


def test_random_pad_crop_is_a_shift_within_the_padding():
    image = tf.reshape(tf.range(1, 28 * 28 + 1, dtype=tf.float32), (28, 28, 1))
    padded = np.pad(image.numpy(), ((4, 4), (4, 4), (0, 0)))
    for seed in range(5):
        crop = data.random_pad_crop(image, pad=4, seed=seed).numpy()
        assert crop.shape == (28, 28, 1)
        assert any(np.array_equal(crop, padded[dy:dy + 28, dx:dx + 28]) for dy in range(9) for dx in range(9))
