"""`nasnet demo`'s final model (Fashion-MNIST, 28 x 28 x 1) exports and serves, with the numbers of the model.

The demo runs at its smallest (one child, one epoch on 32 images); then `nasnet export`
writes its grayscale model with the preprocessing it was trained on (per-image
whitening), and each signature must give the Keras model's own probabilities: float
grayscale images, encoded PNG/JPEG (RGB files are decoded to the model's one channel)
and the reusable `__call__`.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from nasnet_keras import cli, data


@pytest.mark.slow
def test_the_demos_final_model_exports_and_serves(tmp_path, capsys):
    demo = tmp_path / "demo"
    assert cli.main(["demo", "--skip-table", "--directory", str(demo), "--trials", "1", "--num-blocks", "1",
                     "--subset", "32", "--validation-size", "16", "--final-subset", "32", "--final-epochs", "1",
                     "--test-size", "16", "--population-size", "1"]) == 0
    summary = json.loads((demo / "summary.json").read_text())
    served = tmp_path / "served"
    assert cli.main(["export", "--model", summary["files"]["model"], "--out", str(served),
                     "--preprocessing", "standardize", "--top-k", "2"]) == 0
    capsys.readouterr()
    card = json.loads((served / "1" / "model_card.json").read_text())
    assert card["input_size"] == [28, 28, 1] and card["input_preprocessing"] == "standardize"

    model = keras.models.load_model(summary["files"]["model"])
    pixels = np.stack([image.numpy() for image, _ in data.load("fashion_mnist", "test[:4]")]).astype("float32")
    expected = model.predict(tf.image.per_image_standardization(pixels), verbose=0)
    loaded = tf.saved_model.load(str(served / "1"))

    out = loaded.signatures["serving_default"](images=tf.constant(pixels))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    assert out["classes"].shape == (4, 2)

    png = [tf.io.encode_png(p.astype(np.uint8)).numpy() for p in pixels]  # lossless: exact pixels
    out = loaded.signatures["serving_bytes"](image_bytes=tf.constant(png))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)

    rgb = tf.io.encode_png(np.repeat(pixels[0].astype(np.uint8), 3, axis=-1)).numpy()  # RGB file, gray model
    out = loaded.signatures["serving_bytes"](image_bytes=tf.constant([rgb]))
    np.testing.assert_allclose(out["probabilities"].numpy()[0], expected[0], atol=2e-3)

    hub = loaded(tf.constant(pixels / 255.0, tf.float32), training=False)
    np.testing.assert_allclose(hub.numpy(), expected, atol=1e-4)
