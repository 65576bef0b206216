"""What the serving signatures accept from a client, checked in the graph: the answer is
correct or an INVALID_ARGUMENT that names the element and what is accepted.

A served model sees whatever a client sends. Every input is checked before it is used:

* `image_bytes` (`serving_bytes`), per element: the first bytes must be those of JPEG,
  PNG, GIF, BMP or WebP, else INVALID_ARGUMENT naming the index and showing the first
  bytes in base64 (raw bytes in the message broke the client: TF's message became a
  `UnicodeDecodeError` for binary payloads such as gzip, zip or PDF data). The image's
  width and height are read from its header *before* decoding, and an image of more than
  `MAX_PIXELS` pixels (or of zero size) is refused, so a small file that claims
  100,000 x 100,000 pixels cannot make the server allocate 30 GB. Images decode to the
  model's channels (grayscale models: 1; RGB: 3; alpha dropped, first GIF frame) and are
  resized (bilinear) to the model's size.
* float `images` (`serving_default`, `features`): the dtype is fixed by the signature;
  the shape [batch, H, W, C] is checked in the graph (a served function does not enforce
  its declared shape); values must be finite and within 0..255 (the documented pixel
  range), else INVALID_ARGUMENT.

An empty batch gives empty outputs. Decoding runs at most `PARALLEL_DECODES` images at a
time, which bounds the memory of one request at about
`PARALLEL_DECODES * MAX_PIXELS * channels` bytes.
"""

from __future__ import annotations

import tensorflow as tf

# 40 megapixels: a 12-50 MP phone or camera photo decodes; beyond that, resize on the client.
MAX_PIXELS = 40_000_000
PARALLEL_DECODES = 4
FORMATS = "JPEG, PNG, GIF, BMP, WebP"
_HEAD = 32  # bytes of header read for the format and the dimensions


def _head_bytes(data):
    padded = data + b"\0" * _HEAD  # padded: substr fails past the end
    return tf.cast(tf.io.decode_raw(tf.strings.substr(padded, 0, _HEAD), tf.uint8), tf.int64)


def _le(b, start, count):
    return sum(b[start + i] * (256 ** i) for i in range(count))


def _be(b, start, count):
    return sum(b[start + i] * (256 ** (count - 1 - i)) for i in range(count))


def _prefix(data, magic: bytes):
    return tf.strings.substr(data + b"\0" * _HEAD, 0, len(magic)) == magic


def _format_and_size(data):
    """(known format: bool, height: int64, width: int64) from the header, without decoding."""
    b = _head_bytes(data)
    padded = data + b"\0" * _HEAD
    is_jpeg = _prefix(data, b"\xff\xd8\xff")
    is_png = _prefix(data, b"\x89PNG")
    is_gif = _prefix(data, b"GIF8")
    is_bmp = _prefix(data, b"BM")
    is_webp = tf.logical_and(_prefix(data, b"RIFF"), tf.strings.substr(padded, 8, 4) == b"WEBP")
    chunk = tf.strings.substr(padded, 12, 4)
    zero = tf.constant(0, tf.int64)

    def signed32(value):
        return tf.where(value >= 2 ** 31, value - 2 ** 32, value)

    # WebP: lossy ("VP8 "), lossless ("VP8L") or extended ("VP8X") headers.
    webp_w = tf.where(chunk == b"VP8X", 1 + _le(b, 24, 3),
                      tf.where(chunk == b"VP8L", 1 + (b[21] + (b[22] % 64) * 256), _le(b, 26, 2) % 16384))
    webp_h = tf.where(chunk == b"VP8X", 1 + _le(b, 27, 3),
                      tf.where(chunk == b"VP8L", 1 + (b[22] // 64 + b[23] * 4 + (b[24] % 16) * 1024),
                               _le(b, 28, 2) % 16384))
    height = tf.where(is_png, _be(b, 20, 4), tf.where(is_gif, _le(b, 8, 2),
                      tf.where(is_bmp, tf.abs(signed32(_le(b, 22, 4))), tf.where(is_webp, webp_h, zero))))
    width = tf.where(is_png, _be(b, 16, 4), tf.where(is_gif, _le(b, 6, 2),
                     tf.where(is_bmp, tf.abs(signed32(_le(b, 18, 4))), tf.where(is_webp, webp_w, zero))))

    def jpeg_size():
        shape = tf.cast(tf.image.extract_jpeg_shape(data), tf.int64)
        return shape[0], shape[1]

    height, width = tf.cond(is_jpeg, jpeg_size, lambda: (height, width))
    known = tf.reduce_any(tf.stack([is_jpeg, is_png, is_gif, is_bmp, is_webp]))
    return known, height, width


def decode_images(image_bytes, size: tuple[int, int], channels: int = 3, signature: str = "serving_bytes",
                  input_name: str = "image_bytes"):
    """Encoded images (string [batch]) -> float32 [batch, H, W, channels], pixels 0..255.

    Raises InvalidArgumentError naming the element for a string that is not an image of
    an accepted format, an image larger than `MAX_PIXELS` or one that fails to decode.
    """
    height, width = size

    def one(args):
        index, data = args
        known, h, w = _format_and_size(data)
        first = tf.io.encode_base64(tf.strings.substr(data, 0, 12))  # ASCII: safe in an error message
        check_format = tf.debugging.Assert(
            known,
            [f"{signature}: {input_name}[i] is not an encoded image (accepted: {FORMATS}); i =", index,
             "length:", tf.strings.length(data), "first bytes (base64url):", first],
        )
        with tf.control_dependencies([check_format]):
            pixels = h * w
        check_size = tf.debugging.Assert(
            tf.logical_and(pixels > 0, pixels <= MAX_PIXELS),
            [f"{signature}: {input_name}[i] has an accepted size of 1..{MAX_PIXELS} pixels only; i =", index,
             "height:", h, "width:", w],
        )
        with tf.control_dependencies([check_size]):
            image = tf.io.decode_image(data, channels=channels, dtype=tf.uint8, expand_animations=False)
        image = tf.image.resize(image, (height, width), method="bilinear")
        return tf.ensure_shape(image, (height, width, channels))

    indices = tf.range(tf.shape(image_bytes)[0])
    return tf.map_fn(one, (indices, image_bytes), parallel_iterations=PARALLEL_DECODES,
                     fn_output_signature=tf.TensorSpec((height, width, channels), tf.float32))


def check_pixels(images, signature: str, input_name: str = "images", shape: tuple | None = None):
    """`images` unchanged, after checking its [batch, H, W, C] shape and that every value is finite in 0..255.

    The signature declares the shape, but a served function does not enforce it (a
    65 x 64 image would run through the convolutions and give an answer for a
    different input size), so it is checked here.
    """
    checks = []
    if shape is not None:
        checks.append(tf.debugging.Assert(
            tf.reduce_all(tf.equal(tf.shape(images)[1:], tf.constant(shape, tf.int32))),
            [f"{signature}: {input_name} must have shape [batch, {', '.join(map(str, shape))}]; received shape",
             tf.shape(images)],
        ))
    with tf.control_dependencies(checks):
        finite = tf.reduce_all(tf.math.is_finite(images))
        in_range = tf.logical_and(tf.reduce_all(images >= 0.0), tf.reduce_all(images <= 255.0))
    check = tf.debugging.Assert(
        tf.logical_and(finite, in_range),
        [f"{signature}: {input_name} must hold finite pixel values within 0..255 (raw RGB/grayscale); "
         "received min, max:", tf.reduce_min(images), tf.reduce_max(images)],
    )
    with tf.control_dependencies([check]):
        return tf.identity(images)
