"""Bad requests fail loudly and say why; bad export arguments are refused before any work."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from savedmodel_helpers import tiny_nasnet


def _photo_bytes():
    pixels = np.random.RandomState(0).randint(0, 256, (48, 40, 3)).astype(np.uint8)
    return tf.io.encode_jpeg(pixels).numpy(), tf.io.encode_png(pixels).numpy()


def _error_of(loaded, batch):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        loaded.signatures["serving_bytes"](image_bytes=tf.constant(batch))
    return str(info.value)


@pytest.mark.parametrize("payload", [b"", b"hello, not an image", b"%PDF-1.4 something"])
def test_non_image_bytes_name_the_element(loaded, payload):
    jpeg, _ = _photo_bytes()
    message = _error_of(loaded, [jpeg, payload])
    assert "image_bytes[i] is not an encoded image" in message
    assert "JPEG, PNG, GIF, BMP, WebP" in message
    assert "i =] [1]" in message  # the offending element's index


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_truncated_image_is_an_error_not_a_zero_image(loaded, fmt):
    jpeg, png = _photo_bytes()
    data = jpeg if fmt == "jpeg" else png
    message = _error_of(loaded, [data[: len(data) // 2]])
    assert f"Invalid {fmt.upper()} data" in message


def test_export_argument_errors(classifier, tmp_path):
    from savedmodels import export

    base = str(tmp_path / "m")
    with pytest.raises(ValueError, match=r"`version` must be an integer >= 1.*version=0"):
        export(classifier, base, version=0)
    with pytest.raises(ValueError, match=r"`top_k` must be an integer >= 1.*top_k=0"):
        export(classifier, base, top_k=0)
    with pytest.raises(ValueError, match=r"name each of the model's 5 outputs. Received 2 names"):
        export(classifier, base, class_names=["a", "b"])
    with pytest.raises(ValueError, match=r"`kind` must be one of .*kind='detector'"):
        export(classifier, base, kind="detector")
    with pytest.raises(ValueError, match=r"`ema` must be one of .*ema='sometimes'"):
        export(classifier, base, ema="sometimes")
    with pytest.raises(ValueError, match=r"ema=True but the model has no optimizer moving averages"):
        export(classifier, base, ema=True)
    assert not os.path.exists(base)  # nothing was created for a refused export


def test_models_that_cannot_be_exported(tmp_path):
    import keras

    from savedmodels import export

    no_top = tiny_nasnet(include_top=False, weight_decay=0.0)
    with pytest.raises(ValueError, match=r"has no classifier head .*kind='backbone'"):
        export(no_top, str(tmp_path / "m"), kind="classifier")
    dynamic = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match=r"static \(H, W, 3\) image input.*Received input shape \(None, None, 3\)"):
        export(dynamic, str(tmp_path / "m"))
    plain = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match=r"has no NASNetCell layers"):
        export(plain, str(tmp_path / "m"))
