"""The TF Serving signatures (tag `serve`): names, inputs, outputs and in-graph preprocessing.

Clients of a served model see only the signatures, so everything a client would
otherwise have to reproduce exactly (scaling to [-1, 1], decoding, resizing, top-k)
happens inside the graph:

* `serving_default`: `images` float32 [batch, H, W, 3], raw RGB 0..255 ->
  `probabilities` [batch, classes], `classes` int32 [batch, k] (top-k indices, best
  first) and `scores` float32 [batch, k] (their probabilities);
* `serving_bytes`: `image_bytes` string [batch] of encoded JPEG/PNG/GIF/BMP/WebP
  (TF Serving's REST `{"b64": ...}`), decoded to RGB and resized to H x W (bilinear,
  aspect ratio not kept) in the graph -> the same outputs as `serving_default`;
* `features`: `images` as in `serving_default` -> `features` float32 [batch, channels],
  the globally average-pooled last feature map (the classifier's input).

A model without a classifier head has the same three signatures, each returning
`features` only (what `__call__` returns, classifier output or feature maps, is the
reusable root's business, not the signatures').
"""

from __future__ import annotations

import keras
import tensorflow as tf

from savedmodels.introspect import ModelFacts

DEFAULT = "serving_default"
BYTES = "serving_bytes"
FEATURES = "features"
IMAGES_INPUT = "images"
BYTES_INPUT = "image_bytes"

# The preprocessing of keras.applications' NASNet ("tf" mode), written once for all entry points.
PIXEL_SCALE = 127.5


def scale_pixels(images):
    """RGB 0..255 -> [-1, 1], as `nasnet_keras.preprocess_input`."""
    return images / PIXEL_SCALE - 1.0


# First bytes of the formats `tf.io.decode_image` reads; checked before decoding so that a
# bad element is reported with its index instead of a bare decoder error.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")


def _looks_like_image(data):
    head = tf.strings.substr(data + b"\0" * 12, 0, 12)  # padded: substr fails past the end
    known = tf.reduce_any(tf.stack([tf.strings.substr(head, 0, len(m)) == m for m in _MAGIC]))
    webp = tf.logical_and(tf.strings.substr(head, 0, 4) == b"RIFF", tf.strings.substr(head, 8, 4) == b"WEBP")
    return tf.logical_or(known, webp)


def decode_images(image_bytes, size: tuple[int, int]):
    """Encoded images (string [batch]) -> float32 [batch, H, W, 3] RGB 0..255.

    Each image is decoded to 8-bit RGB (grayscale is expanded, alpha dropped, the first GIF
    frame used) and resized to `size` with bilinear interpolation (identity when the image
    already has that size). A string that is not an image, or an image that fails to
    decode, raises `InvalidArgumentError` naming the element: the request fails rather
    than being answered for a zero image.
    """
    height, width = size

    def one(args):
        index, data = args
        check = tf.debugging.Assert(
            _looks_like_image(data),
            [
                f"{BYTES}: {BYTES_INPUT}[i] is not an encoded image (accepted: JPEG, PNG, GIF, BMP, WebP); i =",
                index,
                "first bytes:",
                tf.strings.substr(data, 0, 16),
                "length:",
                tf.strings.length(data),
            ],
            summarize=16,
        )
        with tf.control_dependencies([check]):
            image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), (height, width), method="bilinear")
        return tf.ensure_shape(image, (height, width, 3))

    indices = tf.range(tf.shape(image_bytes)[0])
    return tf.map_fn(one, (indices, image_bytes), fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32))


def build(facts: ModelFacts, top_k: int = 5) -> dict:
    """The serving signatures of `facts.model`, as concrete functions keyed by signature name.

    The network is traced once, in `forward`, which every signature calls: tracing is the
    slow part of an export, and one graph guarantees the signatures agree.
    """
    height, width = facts.input_size
    image_spec = tf.TensorSpec((None, height, width, 3), tf.float32, name=IMAGES_INPUT)
    bytes_spec = tf.TensorSpec((None,), tf.string, name=BYTES_INPUT)
    heads = {"features": facts.pooled.output}
    if facts.classifier is not None:
        heads["head"] = facts.classifier.output
    network = keras.Model(facts.model.inputs[0], heads, name=f"{facts.model.name}_serving")
    k = min(int(top_k), facts.num_classes) if facts.classifier is not None else None
    softmax = facts.classifier_activation in ("linear", None)

    @tf.function(input_signature=[image_spec], autograph=False)
    def forward(images):
        outputs = {key: tf.cast(value, tf.float32)
                   for key, value in network(scale_pixels(images), training=False).items()}
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
        return predict(images)

    @tf.function(input_signature=[bytes_spec], autograph=False)
    def serving_bytes(image_bytes):
        return predict(decode_images(image_bytes, (height, width)))

    @tf.function(input_signature=[image_spec], autograph=False)
    def features(images):
        return {"features": forward(images)["features"]}

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
