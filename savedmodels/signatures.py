"""The TF Serving signatures (tag `serve`): names, inputs, outputs and in-graph preprocessing.

Clients of a served model see only the signatures, so everything a client would
otherwise have to reproduce exactly (scaling to [-1, 1], decoding, resizing, top-k)
happens inside the graph:

* `serving_default`: `images` float32 [batch, H, W, C], raw RGB (C = 3) or grayscale
  (C = 1, the model's channels) 0..255 ->
  `probabilities` [batch, classes], `classes` int32 [batch, k] (top-k indices, best
  first) and `scores` float32 [batch, k] (their probabilities);
* `serving_bytes`: `image_bytes` string [batch] of encoded JPEG/PNG/GIF/BMP/WebP
  (TF Serving's REST `{"b64": ...}`), decoded to the model's channels and resized to H x W
  (bilinear, aspect ratio not kept) in the graph -> the same outputs as `serving_default`;
* `features`: `images` as in `serving_default` -> `features` float32 [batch, channels],
  the globally average-pooled last feature map (the classifier's input).

A model without a classifier head has the same three signatures, each returning
`features` only (what `__call__` returns, classifier output or feature maps, is the
reusable root's business, not the signatures').
"""

from __future__ import annotations

import keras
import tensorflow as tf

from savedmodels import image_decode
from savedmodels.introspect import ModelFacts

DEFAULT = "serving_default"
BYTES = "serving_bytes"
FEATURES = "features"
IMAGES_INPUT = "images"
BYTES_INPUT = "image_bytes"

# The preprocessing of keras.applications' NASNet ("tf" mode), written once for all entry points.
PIXEL_SCALE = 127.5


PREPROCESSING = ("scale", "standardize")


def scale_pixels(images):
    """RGB 0..255 -> [-1, 1], as `nasnet_keras.preprocess_input`."""
    return images / PIXEL_SCALE - 1.0


def preprocess(images, preprocessing: str = "scale"):
    """Pixels 0..255 -> the network's input: "scale" ([-1, 1]) or "standardize" (per-image whitening,
    `nasnet_keras.data.standardize`, what the CIFAR recipe and the search train on)."""
    if preprocessing == "standardize":
        return tf.image.per_image_standardization(images)
    return scale_pixels(images)


def decode_images(image_bytes, size: tuple[int, int], channels: int = 3):
    """Encoded images (string [batch]) -> float32 [batch, H, W, channels], pixels 0..255.

    Checked per element (format, header size, decoding) with an INVALID_ARGUMENT naming
    the element: see `savedmodels.image_decode`.
    """
    return image_decode.decode_images(image_bytes, size, channels, signature=BYTES, input_name=BYTES_INPUT)


def build(facts: ModelFacts, top_k: int = 5) -> dict:
    """The serving signatures of `facts.model`, as concrete functions keyed by signature name.

    The network is traced once, in `forward`, which every signature calls: tracing is the
    slow part of an export, and one graph guarantees the signatures agree.
    """
    height, width = facts.input_size
    channels = facts.channels
    image_spec = tf.TensorSpec((None, height, width, channels), tf.float32, name=IMAGES_INPUT)
    bytes_spec = tf.TensorSpec((None,), tf.string, name=BYTES_INPUT)
    heads = {"features": facts.pooled.output}
    if facts.classifier is not None:
        heads["head"] = facts.classifier.output
    network = keras.Model(facts.model.inputs[0], heads, name=f"{facts.model.name}_serving")
    k = min(int(top_k), facts.num_classes) if facts.classifier is not None else None
    softmax = facts.classifier_activation in ("linear", None)

    @tf.function(input_signature=[image_spec], autograph=False)
    def forward(images):
        # An empty batch is answered with empty outputs; the network itself cannot run on
        # zero images (its reductions fail on the empty shape), so it sees one blank image.
        batch = tf.shape(images)[0]
        nonempty = tf.cond(batch > 0, lambda: images, lambda: tf.zeros((1, height, width, channels), images.dtype))
        outputs = {key: tf.cast(value, tf.float32)[:batch]
                   for key, value in network(preprocess(nonempty, facts.preprocessing), training=False).items()}
        if k is None:
            return outputs
        probabilities = outputs.pop("head")
        if softmax:  # a logits head: serve probabilities all the same
            probabilities = tf.nn.softmax(probabilities, axis=-1)
        scores, classes = tf.math.top_k(probabilities, k=k)
        outputs.update(probabilities=probabilities, classes=classes, scores=scores)
        return outputs

    def predict(images):
        outputs = forward(images)
        if k is None:
            return {"features": outputs["features"]}
        return {key: outputs[key] for key in ("probabilities", "classes", "scores")}

    @tf.function(input_signature=[image_spec], autograph=False)
    def serving_default(images):
        return predict(image_decode.check_pixels(images, DEFAULT, IMAGES_INPUT, (height, width, channels)))

    @tf.function(input_signature=[bytes_spec], autograph=False)
    def serving_bytes(image_bytes):
        return predict(decode_images(image_bytes, (height, width), channels))

    @tf.function(input_signature=[image_spec], autograph=False)
    def features(images):
        return {"features": forward(image_decode.check_pixels(images, FEATURES, IMAGES_INPUT, (height, width, channels)))["features"]}

    return {
        DEFAULT: serving_default.get_concrete_function(),
        BYTES: serving_bytes.get_concrete_function(),
        FEATURES: features.get_concrete_function(),
    }


def describe(signatures: dict) -> dict:
    """{name: {"inputs": {name: [dtype, shape]}, "outputs": {...}}}: what the model card and docs list."""

    def spec(s):
        return {"dtype": s.dtype.name, "shape": [None if d is None else int(d) for d in s.shape.as_list()]}

    described = {}
    for name, fn in signatures.items():
        inputs = {s.name: spec(s) for s in fn.structured_input_signature[1].values()} or {
            s.name: spec(s) for s in fn.structured_input_signature[0]
        }
        described[name] = {
            "inputs": inputs,
            "outputs": {key: spec(s) for key, s in sorted(fn.structured_outputs.items())},
        }
    return described
