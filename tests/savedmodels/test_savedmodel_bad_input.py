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


def _encoded(fmt):
    """A 48x40 photo-like image encoded as `fmt` (Pillow writes the formats TF cannot encode)."""
    import io

    from PIL import Image

    pixels = np.random.RandomState(0).randint(0, 256, (48, 40, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "WEBP"])
def test_truncated_or_corrupt_image_names_the_element(loaded, fmt):
    """A decoder's own error cannot say which element failed; the signature's must (and never a zero image)."""
    good = _encoded(fmt)
    assert loaded.signatures["serving_bytes"](image_bytes=tf.constant([good]))["probabilities"].shape == (1, 5)
    jpeg, png = _photo_bytes()
    damaged = {"first half": good[: len(good) // 2], "header only": good[:40], "last byte missing": good[:-1]}
    if fmt == "PNG":
        body = bytearray(good)
        body[len(body) // 2] ^= 0xFF  # a flipped bit in the image data: the chunk's CRC fails
        damaged["corrupt body"] = bytes(body)
    if fmt not in ("JPEG", "PNG"):
        del damaged["last byte missing"]  # GIF's trailer, BMP's row padding, WebP's last byte carry no pixels
    for name, data in damaged.items():
        for position in (0, 2):
            batch = [jpeg, png, jpeg]
            batch[position] = data
            message = _error_of(loaded, batch)
            expected = (f"image_bytes[i] does not decode (truncated or corrupt image data); i =] [{position}] "
                        f"[format:] [{'WebP' if fmt == 'WEBP' else fmt}] [length:] [{len(data)}]")
            assert expected in message, (fmt, name, message)


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
