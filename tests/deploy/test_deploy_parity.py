"""Every fp32 export computes what Keras computes, to 1e-4, on the same raw-pixel images.

Each format is run by its own runtime (ONNX Runtime, LiteRT, OpenVINO at f32) through
`savedmodels.runtimes`; the reference is the Keras model on `preprocess_input(images)`
with a softmax on its logits head, i.e. what `serving_default` promises.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from deploy_helpers import CLASS_NAMES, CLASSES, PARITY_TOLERANCE, RUNTIME_FORMATS, SIZE, keras_probabilities, pixels

from savedmodels import runtimes


@pytest.fixture(scope="module")
def images():
    return pixels(5)


@pytest.fixture(scope="module")
def expected(searched, images):
    return keras_probabilities(searched, images)


@pytest.mark.parametrize("fmt", ("saved_model",) + RUNTIME_FORMATS)
def test_searched_genotype_export_equals_keras(searched_exports, images, expected, fmt):
    runner = runtimes.load(searched_exports[fmt].model_file)
    assert runner.format == fmt
    got = runner(images)
    assert got.shape == (5, CLASSES) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=PARITY_TOLERANCE, rtol=0)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)  # the logits head's softmax is inside
    # a different batch size runs too (batch is dynamic in every format)
    np.testing.assert_allclose(runner(images[:1]), expected[:1], atol=PARITY_TOLERANCE, rtol=0)


def test_the_searched_model_is_not_nasnet_a(searched_exports):
    from nasnet_keras import NASNET_A

    card = searched_exports["onnx"].card
    assert card["genotype"]["id"] != NASNET_A.id


@pytest.mark.parametrize("fmt", RUNTIME_FORMATS)
def test_model_card_says_format_input_preprocessing_and_classes(searched_exports, fmt):
    result = searched_exports[fmt]
    assert sorted(os.listdir(result.path)) == sorted(result.card["files"]) + ["model_card.json"]
    with open(os.path.join(result.path, "model_card.json"), encoding="utf-8") as f:
        card = json.load(f)
    assert card == result.card
    assert card["format"] == fmt
    assert os.path.basename(result.model_file) == card["file"]
    assert card["input"] == {"name": "images", "dtype": "float32", "layout": "NHWC",
                             "shape": [None, SIZE, SIZE, 3], "range": [0, 255], "channels": "RGB"}
    assert "0..255" in card["preprocessing"] and "x / 127.5 - 1" in card["preprocessing"]
    assert card["class_names"] == CLASS_NAMES and card["classes"] == CLASSES
    assert card["output"]["shape"] == [None, CLASSES]
    assert card["quantization"] == "none" and card["weights"] == "raw"
    assert card["install"] == f"pip install nasnet_keras[{fmt}]"
    assert all(size > 0 for size in card["files"].values())
    if fmt == "openvino":
        assert set(card["files"]) == {"model.xml", "model.bin"} and "f32" in card["inference_precision"]


def test_openvino_default_precision_is_reported_and_close(searched_exports, images, expected):
    """OpenVINO's CPU default may be bf16: the runner says which, and f32 is what gives parity."""
    runner = runtimes.load(searched_exports["openvino"].model_file, precision="default")
    assert runner.precision in ("f32", "bf16", "f16")
    got = runner(images)
    assert np.abs(got - expected).max() < 0.05  # bf16 keeps ~3 significant digits
    assert runtimes.load(searched_exports["openvino"].model_file).precision == "f32"
