"""The documented requests (docs/serving.md, and the README's copy if any) fit the signatures.

TF Serving cannot run here (reference.md §6), so its JSON-to-tensor rules are applied by
`savedmodels.rest.parse_rest_body` and the resulting tensors are fed to the reloaded
signatures; the gRPC request builders of the docs are executed as written.
"""

from __future__ import annotations

import importlib

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from savedmodels import rest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(ROOT, "docs", "serving.md")
SECTION_TITLE = "## Serving with TF Serving"


def documents():
    """docs/serving.md, plus the README's serving section once it has been pasted there."""
    texts = {"docs/serving.md": open(DOC, encoding="utf-8").read()}
    readme = os.path.join(ROOT, "README.md")
    if os.path.exists(readme):
        text = open(readme, encoding="utf-8").read()
        if SECTION_TITLE in text:
            section = text[text.index(SECTION_TITLE):]
            following = re.search(r"^## (?!#)", section[len(SECTION_TITLE):], flags=re.M)
            texts["README.md"] = section[: len(SECTION_TITLE) + following.start()] if following else section
    return texts


def blocks(text, language):
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def request_bodies():
    bodies = []
    for name, text in documents().items():
        for i, block in enumerate(blocks(text, "json")):
            bodies.append(pytest.param(json.loads(block), id=f"{name}-json{i}"))
    return bodies


def doc_namespace(text):
    """Execute the documentation's client-side Python definitions (the blocks defining functions)."""
    namespace = {}
    for block in blocks(text, "python"):
        if "def " in block and "stub.Predict" not in block:
            exec(compile(block, DOC, "exec"), namespace)
    return namespace


PHOTOS = ["rocket.jpg", "chelsea.png"]


def photo_paths():
    skimage_data = importlib.import_module("skimage.data")
    return [os.path.join(os.path.dirname(skimage_data.__file__), name) for name in PHOTOS]


def test_docs_have_json_bodies_for_both_forms():
    bodies = [p.values[0] for p in request_bodies()]
    assert any("instances" in b for b in bodies) and any("inputs" in b for b in bodies)
    assert all(b.get("signature_name") == "serving_bytes" for b in bodies)


@pytest.mark.parametrize("body", request_bodies())
def test_json_body_parses_into_signature_inputs_and_runs(loaded, body):
    specs = rest.input_specs(loaded)
    name, inputs = rest.parse_rest_body(body, specs)
    assert set(inputs) == set(specs[name])
    for key, value in inputs.items():
        assert tf.as_dtype(value.dtype if value.dtype != object else tf.string) == specs[name][key].dtype
    out = loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
    assert out["probabilities"].shape[0] == len(next(iter(inputs.values())))
    # Same answer as the float signature on the decoded pixels (the body's image is 2x2).
    pixels = tf.image.resize(tf.cast(tf.io.decode_image(inputs["image_bytes"][0], channels=3), tf.float32),
                             out_size(loaded))
    expected = loaded.signatures["serving_default"](images=pixels[None])["probabilities"]
    np.testing.assert_allclose(out["probabilities"][:1].numpy(), expected.numpy(), atol=1e-5)


def out_size(loaded):
    return tuple(rest.input_specs(loaded)["serving_default"]["images"].shape[1:3])


@pytest.mark.parametrize("doc", sorted(documents()))
def test_documented_python_rest_bodies(loaded, images, doc):
    namespace = doc_namespace(documents()[doc])
    specs = rest.input_specs(loaded)
    # bytes_body over real photo files, sent through JSON text as a client would.
    body = json.loads(json.dumps(namespace["bytes_body"](photo_paths())))
    name, inputs = rest.parse_rest_body(body, specs)
    assert name == "serving_bytes" and inputs["image_bytes"].shape == (len(PHOTOS),)
    served = loaded.signatures[name](image_bytes=tf.constant(list(inputs["image_bytes"])))
    assert served["classes"].shape[0] == len(PHOTOS)
    # pixels_body: float images, no scaling on the client.
    body = json.loads(json.dumps(namespace["pixels_body"](images[:2])))
    name, inputs = rest.parse_rest_body(body, specs)
    assert name == "serving_default" and inputs["images"].dtype == np.float32
    np.testing.assert_array_equal(inputs["images"], images[:2])


@pytest.mark.parametrize("doc", sorted(documents()))
def test_documented_grpc_requests_name_existing_inputs_with_matching_dtypes(loaded, images, doc):
    importlib.import_module("tensorflow_serving.apis.predict_pb2")
    namespace = doc_namespace(documents()[doc])
    specs = rest.input_specs(loaded)
    for request in (namespace["bytes_request"](photo_paths()), namespace["pixels_request"](images[:2])):
        assert request.model_spec.name == "nasnet"
        signature = request.model_spec.signature_name
        assert signature in specs
        assert set(request.inputs) == set(specs[signature])
        for key, proto in request.inputs.items():
            assert tf.dtypes.as_dtype(proto.dtype) == specs[signature][key].dtype
            value = tf.make_ndarray(proto)
            assert specs[signature][key].shape.is_compatible_with(value.shape)
        # What the server would run: the request's tensors through the signature.
        out = loaded.signatures[signature](**{k: tf.constant(tf.make_ndarray(p)) for k, p in request.inputs.items()})
        assert set(out) == {"probabilities", "classes", "scores"}


def test_rest_helpers_round_trip_and_errors(loaded, images):
    specs = rest.input_specs(loaded)
    for form in ("instances", "inputs"):
        body = json.loads(json.dumps(rest.rest_body({"images": images[:2]}, form=form)))
        name, inputs = rest.parse_rest_body(body, specs)
        assert name == "serving_default"
        np.testing.assert_array_equal(inputs["images"], images[:2])
    with pytest.raises(ValueError, match=r"Unknown signature_name 'nope'. The model has: .*serving_bytes"):
        rest.parse_rest_body({"signature_name": "nope", "instances": [1]}, specs)
    with pytest.raises(ValueError, match=r"takes inputs \['images'\]. Received \['pixels'\]"):
        rest.parse_rest_body({"inputs": {"pixels": images[:1].tolist()}}, specs)
    with pytest.raises(ValueError, match=r"Input 'images' must have shape \[None, 64, 64, 3\]"):
        rest.parse_rest_body({"instances": [[[0.0, 0.0, 0.0]]]}, specs)
    with pytest.raises(ValueError, match=r"string tensor: send each element as \{'b64'"):
        rest.parse_rest_body({"signature_name": "serving_bytes", "instances": ["raw text"]}, specs)
