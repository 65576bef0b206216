"""Serving inputs, export debris after SIGKILL, and foreign weights: correct or a clear error, never debris.

* every signature, for what a client can send: binary non-image payloads, truncated and
  oversized images, wrong values, empty batches -> the right answer or INVALID_ARGUMENT
  naming the element (never a UnicodeDecodeError);
* an export killed with SIGKILL leaves a hidden partial that the next export removes (a
  live writer's partial is left alone), and `--overwrite` over a version that is a file
  leaves nothing beside it;
* a weights file written for another genotype is refused by name.
"""

import gzip
import io
import os
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from nasnet_keras import fileio
from savedmodel_helpers import SIZE
from savedmodels import exporter, image_decode

PNG = tf.io.encode_png(np.full((20, 30, 3), 128, np.uint8)).numpy()
JPEG = tf.io.encode_jpeg(np.full((40, 10, 3), 200, np.uint8)).numpy()


def huge_png():
    header = bytearray(PNG)
    header[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR claims 100,000 x 100,000 pixels
    return bytes(header)


def zip_bytes():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "not an image")
    return buffer.getvalue()


NOT_IMAGES = {
    "random": np.random.RandomState(0).bytes(300),
    "gzip": gzip.compress(b"\x00\xff" * 50),
    "zip": zip_bytes(),
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj",
    "utf8 text": "caf\u00e9 \u2603".encode(),
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(NOT_IMAGES))
def test_binary_payloads_are_invalid_argument_naming_the_element(loaded, name):
    fn = loaded.signatures["serving_bytes"]
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        fn(image_bytes=tf.constant([PNG, NOT_IMAGES[name]]))
    message = error.value.message
    assert "image_bytes[i] is not an encoded image (accepted: JPEG, PNG, GIF, BMP, WebP); i =] [1]" in message
    assert "first bytes (base64url)" in message


def test_image_sizes_are_bounded_and_truncated_images_refused(loaded):
    fn = loaded.signatures["serving_bytes"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes\[i\] has an accepted size of "
                                                             r"1..40000000 pixels only; i =\] \[0\].*100000"):
        fn(image_bytes=tf.constant([huge_png(), PNG]))
    for truncated in (PNG[:40], JPEG[:30]):
        with pytest.raises(tf.errors.InvalidArgumentError):
            fn(image_bytes=tf.constant([truncated]))


def test_header_sizes_of_every_format_are_read_without_decoding():
    png = tf.io.encode_png(np.zeros((7, 9, 3), np.uint8)).numpy()
    jpeg = tf.io.encode_jpeg(np.zeros((7, 9, 3), np.uint8)).numpy()
    bmp = bytearray(b"BM" + b"\0" * 16 + (9).to_bytes(4, "little") + (-7).to_bytes(4, "little", signed=True))
    gif = b"GIF89a" + (9).to_bytes(2, "little") + (7).to_bytes(2, "little")
    webp_vp8x = b"RIFF\0\0\0\0WEBPVP8X" + b"\0" * 8 + (8).to_bytes(3, "little") + (6).to_bytes(3, "little")
    webp_vp8 = b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 10 + (9).to_bytes(2, "little") + (7).to_bytes(2, "little")
    w, h = 9 - 1, 7 - 1  # VP8L: 14-bit width-1 and height-1 packed after the 0x2f signature
    bits = w | (h << 14)
    webp_vp8l = b"RIFF\0\0\0\0WEBPVP8L" + b"\0" * 4 + b"\x2f" + bits.to_bytes(4, "little")
    cases = [png, jpeg, bytes(bmp), gif, webp_vp8x, webp_vp8, webp_vp8l]
    for data in cases:
        known, height, width = image_decode._format_and_size(tf.constant(data))
        assert bool(known) and (int(height), int(width)) == (7, 9), data[:16]


def test_float_inputs_are_checked_and_empty_batches_answered(loaded, images):
    for name in ("serving_default", "features"):
        fn = loaded.signatures[name]
        for bad in (np.nan, np.inf, -1.0, 256.0):
            batch = np.array(images, np.float32)
            batch[1, 2, 3, 0] = bad
            with pytest.raises(tf.errors.InvalidArgumentError, match="finite pixel values within 0..255"):
                fn(images=tf.constant(batch))
        empty = fn(images=tf.zeros((0, SIZE, SIZE, 3)))
        assert all(value.shape[0] == 0 for value in empty.values())
    empty = loaded.signatures["serving_bytes"](image_bytes=tf.constant([], tf.string))
    assert empty["probabilities"].shape == (0, 5) and empty["classes"].shape == (0, 3)
    # Wrong shapes are refused in the graph (a served function does not enforce its declared shape),
    # wrong dtypes by the signature itself.
    for shape in ((1, SIZE + 1, SIZE, 3), (2, SIZE, SIZE // 2, 3)):
        with pytest.raises(tf.errors.InvalidArgumentError, match=rf"images must have shape \[batch, {SIZE}, {SIZE}, 3\]"):
            loaded.signatures["serving_default"](images=tf.zeros(shape))
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        loaded.signatures["serving_default"](images=tf.zeros((1, SIZE, SIZE, 3), tf.int32))


KILLED_EXPORT = r"""
import os, signal, sys
from savedmodels import exporter
from savedmodel_helpers import tiny_nasnet

def killed(facts, kind, top_k, path, **options):
    open(os.path.join(path, "saved_model.pb"), "wb").write(b"half")
    os.kill(os.getpid(), signal.SIGKILL)

exporter._write_savedmodel = killed
exporter.export(tiny_nasnet(), sys.argv[1], version=int(sys.argv[2]))
"""


def test_a_killed_export_leaves_a_partial_that_the_next_export_removes(tmp_path, classifier, monkeypatch):
    base = tmp_path / "served"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]))
    killed = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(base), "3"], env=env, capture_output=True,
                            timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    stale = [name for name in os.listdir(base) if fileio.is_partial(name)]
    assert len(stale) == 1 and stale[0].startswith(".3.partial-")
    # A live writer's partial (this process's) must survive the clean-up.
    live = fileio.partial_name(str(base / "4"))
    os.makedirs(live)
    (base / "7").write_text("a file where a version directory belongs")

    from savedmodels import model_card

    monkeypatch.setattr(exporter, "_write_savedmodel", lambda facts, kind, top_k, path, **options: {})
    monkeypatch.setattr(model_card, "_cost", lambda model: (0, 0))
    exporter.export(classifier, base, version=7, overwrite=True)
    assert sorted(os.listdir(base)) == sorted(["7", os.path.basename(live)])
    assert os.path.isdir(base / "7") and os.path.exists(base / "7" / "model_card.json")


def test_export_refuses_weights_of_another_genotype(tmp_path, capsys):
    from nasnet_keras import Genotype, NASNetCIFAR, cli
    from nasnet_keras.training import RunDirectory

    trained = Genotype.from_blocks(normal=[(0, 1, "sep_conv_3x3", "max_pool_3x3")],
                                   reduction=[(0, 1, "sep_conv_3x3", "max_pool_3x3")], name="trained")
    other = Genotype.from_blocks(normal=[(0, 1, "sep_conv_3x3", "avg_pool_3x3")],
                                 reduction=[(0, 1, "sep_conv_3x3", "max_pool_3x3")], name="other")
    model = NASNetCIFAR(input_shape=(8, 8, 3), num_blocks=1, penultimate_filters=8, classes=3, weights=None,
                        genotype=trained)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    weights = RunDirectory(tmp_path / "run").save(model, 0)
    (tmp_path / "other.json").write_text(other.to_json())
    argv = ["export", "--model", str(tmp_path / "other.json"), "--variant", "cifar_6@768", "--weights", weights,
            "--set", "num_blocks=1", "--set", "penultimate_filters=8", "--set", "classes=3",
            "--set", "input_shape=(8, 8, 3)", "--out", str(tmp_path / "served")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert f"was written for genotype [{trained.id}]" in err and f"has genotype [{other.id}]" in err
    assert not (tmp_path / "served").exists()
