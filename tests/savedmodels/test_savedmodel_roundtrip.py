"""Round trip: every signature and `__call__` of the reloaded SavedModel equals the Keras model."""

from __future__ import annotations

import importlib

import os

import numpy as np
import pytest
import tensorflow as tf
from savedmodel_helpers import CLASS_NAMES, CLASSES, SIZE, tiny_nasnet

TOL = 1e-5


def keras_probabilities(model, images):
    return model(images / 127.5 - 1.0, training=False).numpy()


def keras_features(model, images):
    pooled = model.get_layer("avg_pool").output
    import keras

    return keras.Model(model.inputs[0], pooled)(images / 127.5 - 1.0, training=False).numpy()


def test_versioned_layout_and_card(exported):
    assert exported.version == 1 and exported.path.endswith(os.path.join("tiny_nasnet", "1"))
    names = set(os.listdir(exported.path))
    assert {"saved_model.pb", "variables", "model_card.json"} <= names
    assert not [n for n in os.listdir(os.path.dirname(exported.path)) if n.startswith(".")]  # no leftovers


@pytest.mark.parametrize("batch", [1, 3])
def test_serving_default_matches_keras(classifier, loaded, images, batch):
    out = loaded.signatures["serving_default"](images=tf.constant(images[:batch]))
    expected = keras_probabilities(classifier, images[:batch])
    assert out["probabilities"].dtype == tf.float32 and out["probabilities"].shape == (batch, CLASSES)
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=TOL)
    top = np.argsort(-expected, axis=-1)[:, :3]
    assert out["classes"].dtype == tf.int32
    np.testing.assert_array_equal(out["classes"].numpy(), top)
    np.testing.assert_allclose(out["scores"].numpy(), np.take_along_axis(expected, top, -1), atol=TOL)


def test_features_matches_keras(classifier, loaded, images):
    out = loaded.signatures["features"](images=tf.constant(images))["features"].numpy()
    np.testing.assert_allclose(out, keras_features(classifier, images), atol=TOL)


def test_call_matches_keras_and_uses_unit_range(classifier, loaded, images):
    expected = keras_probabilities(classifier, images)
    np.testing.assert_allclose(loaded(images / 255.0).numpy(), expected, atol=TOL)
    np.testing.assert_allclose(loaded(images / 255.0, training=False).numpy(), expected, atol=TOL)


def test_bytes_of_exact_size_pngs_match_float_signature(classifier, loaded, images):
    pixels = images.astype(np.uint8)
    encoded = [tf.io.encode_png(p).numpy() for p in pixels]
    out = loaded.signatures["serving_bytes"](image_bytes=tf.constant(encoded))
    np.testing.assert_allclose(out["probabilities"].numpy(),
                               keras_probabilities(classifier, pixels.astype(np.float32)), atol=TOL)


def test_bytes_of_real_photos_match_float_signature_on_decoded_pixels(loaded):
    """scikit-image's photos, sent as their original JPEG/PNG files (various sizes, gray included)."""
    skimage_data = importlib.import_module("skimage.data")
    folder = os.path.dirname(skimage_data.__file__)
    files = ["rocket.jpg", "chelsea.png", "coffee.png", "camera.png"]  # camera: grayscale
    encoded = [open(os.path.join(folder, name), "rb").read() for name in files]
    by_bytes = loaded.signatures["serving_bytes"](image_bytes=tf.constant(encoded))
    # The documented steps: decode to 8-bit RGB, bilinear resize to the model's size.
    decoded = np.stack([
        tf.image.resize(tf.cast(tf.io.decode_image(data, channels=3, expand_animations=False), tf.float32),
                        (SIZE, SIZE), method="bilinear").numpy()
        for data in encoded
    ])
    by_floats = loaded.signatures["serving_default"](images=tf.constant(decoded))
    for key in ("probabilities", "scores"):
        np.testing.assert_allclose(by_bytes[key].numpy(), by_floats[key].numpy(), atol=TOL)
    np.testing.assert_array_equal(by_bytes["classes"].numpy(), by_floats["classes"].numpy())


def test_reloaded_variables_and_regularization(classifier, loaded):
    assert len(loaded.variables) == len(classifier.variables)
    assert len(loaded.trainable_variables) == len(classifier.trainable_variables)
    saved = {v.name.split(":")[0]: v.numpy() for v in loaded.variables}
    moving = [v for v in classifier.non_trainable_variables if v.path.endswith("moving_mean")][0]
    np.testing.assert_array_equal(saved[moving.value.name.split(":")[0]], moving.numpy())
    (regularization,) = loaded.regularization_losses
    expected = float(sum(float(loss) for loss in classifier.losses))
    assert float(regularization()) == pytest.approx(expected, rel=1e-5)


def test_model_card(exported, classifier):
    from nasnet_keras.genotype import NASNET_A
    from nasnet_keras.profiling import profile
    from savedmodels import read_model_card

    card = read_model_card(exported.path)
    assert card == exported.card
    assert card["genotype"]["id"] == NASNET_A.id
    assert card["input_size"] == [SIZE, SIZE, 3] and card["kind"] == "classifier" and card["variant"] == "tiny"
    assert card["class_names"] == CLASS_NAMES and card["top_k"] == 3 and card["weights"] == "raw"
    stats = profile(classifier)
    assert card["params"] == stats.params and card["mult_adds"] == stats.mult_adds > 0
    assert "127.5" in card["preprocessing"]["serving_default"]
    assert card["feature_levels"] == ["2", "3", "4", "5"]
    assert card["signatures"]["serving_bytes"]["inputs"] == {"image_bytes": {"dtype": "string", "shape": [None]}}
    assert card["signatures"]["serving_default"]["outputs"]["classes"] == {"dtype": "int32", "shape": [None, 3]}


def test_headless_model_signatures_serve_features(images):
    """include_top=False: every signature answers `features` (traced here, not saved: cheap)."""
    import keras

    from savedmodels import introspect
    from savedmodels import signatures as sigs

    model = tiny_nasnet(include_top=False, weight_decay=0.0)
    built = sigs.build(introspect.describe(model))
    relu = model.get_layer("final_relu").output
    expected = keras.Model(model.inputs[0], relu)(images / 127.5 - 1.0).numpy().mean(axis=(1, 2))
    for name in ("serving_default", "features"):
        out = built[name](images=tf.constant(images))
        assert set(out) == {"features"}
        np.testing.assert_allclose(out["features"].numpy(), expected, atol=TOL)
    assert set(built["serving_bytes"].structured_outputs) == {"features"}
