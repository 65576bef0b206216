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
  resized (bilinear) to the model's size. An image that fails to decode (truncated or
  corrupt data) is an INVALID_ARGUMENT naming its index and format too: a decoder's own
  error ("Invalid PNG data") cannot say which element of the batch it came from, so the
  elements are decoded in a `tf.data` pipeline whose `ignore_errors` drops a failing one,
  and the index missing from the result is reported (the decoder's reason goes to the
  server's log).
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
FORMAT_NAMES = ("JPEG", "PNG", "GIF", "BMP", "WebP")
FORMATS = ", ".join(FORMAT_NAMES)
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


def _format_name(data):
    """The format named by the first bytes of `data` (one of FORMAT_NAMES), or "unknown"."""
    padded = data + b"\0" * _HEAD
    flags = [_prefix(data, b"\xff\xd8\xff"), _prefix(data, b"\x89PNG"), _prefix(data, b"GIF8"), _prefix(data, b"BM"),
             tf.logical_and(_prefix(data, b"RIFF"), tf.strings.substr(padded, 8, 4) == b"WEBP")]
    name = tf.constant("unknown")
    for flag, label in reversed(list(zip(flags, FORMAT_NAMES))):
        name = tf.where(flag, tf.constant(label), name)
    return name


_OK, _UNKNOWN, _SIZE = 0, 1, 2


def decode_images(image_bytes, size: tuple[int, int], channels: int = 3, signature: str = "serving_bytes",
                  input_name: str = "image_bytes"):
    """Encoded images (string [batch]) -> float32 [batch, H, W, channels], pixels 0..255.

    Raises InvalidArgumentError naming the element (its index in the batch) for a string
    that is not an image of an accepted format, an image larger than `MAX_PIXELS`, or one
    that fails to decode (truncated, corrupt). Each element's header is read first and only
    an accepted one is decoded; a header or decoder error drops the element from the
    `tf.data` pipeline (`ignore_errors`), which is how its index is found.
    """
    height, width = size
    count = tf.shape(image_bytes, out_type=tf.int64)[0]
    zero = tf.constant(0, tf.int64)
    blank = tf.zeros((height, width, channels), tf.float32)

    def one(index, data):
        known, h, w = _format_and_size(data)  # a malformed JPEG header raises here: the element is dropped
        pixels = h * w
        status = tf.where(known, tf.where(tf.logical_and(pixels > 0, pixels <= MAX_PIXELS), _OK, _SIZE), _UNKNOWN)

        def decode():
            image = tf.io.decode_image(data, channels=channels, dtype=tf.uint8, expand_animations=False)
            return tf.ensure_shape(tf.image.resize(image, (height, width), method="bilinear"), blank.shape)

        return index, status, h, w, tf.cond(tf.equal(status, _OK), decode, lambda: blank)

    decoded = (tf.data.Dataset.from_tensor_slices((tf.range(count), image_bytes))
               .map(one, num_parallel_calls=PARALLEL_DECODES, deterministic=True)
               .ignore_errors(log_warning=True))
    # One sentinel element so that an empty result (empty batch, every element failed) still batches.
    sentinel = tf.data.Dataset.from_tensors((tf.constant(-1, tf.int64), tf.constant(_OK), zero, zero, blank))
    indices, status, heights, widths, images = (
        decoded.concatenate(sentinel).batch(2 ** 31 - 1).get_single_element())
    indices, status, heights, widths, images = (t[:-1] for t in (indices, status, heights, widths, images))

    padded = tf.concat([image_bytes, [""]], 0)  # gathers below stay in range when nothing failed

    def first(mask, values, none):
        """The first of `values` where `mask` holds (`none` if none), and whether there is one."""
        chosen = tf.boolean_mask(values, mask)
        return tf.reduce_min(tf.concat([chosen, [none]], 0)), tf.size(chosen) > 0

    bad_format, any_format = first(tf.equal(status, _UNKNOWN), indices, count)
    data = padded[bad_format]
    check_format = tf.debugging.Assert(
        tf.logical_not(any_format),
        [f"{signature}: {input_name}[i] is not an encoded image (accepted: {FORMATS}); i =", bad_format,
         "length:", tf.strings.length(data), "first bytes (base64url):",
         tf.io.encode_base64(tf.strings.substr(data, 0, 12))],  # ASCII: safe in an error message
    )
    kept = tf.size(status, out_type=tf.int64)
    at, any_size = first(tf.equal(status, _SIZE), tf.range(kept), kept)
    size_values = [tf.concat([t, [zero]], 0)[at] for t in (indices, heights, widths)]
    with tf.control_dependencies([check_format]):
        check_size = tf.debugging.Assert(
            tf.logical_not(any_size),
            [f"{signature}: {input_name}[i] has an accepted size of 1..{MAX_PIXELS} pixels only; i =", size_values[0],
             "height:", size_values[1], "width:", size_values[2]],
        )
    present = tf.scatter_nd(indices[:, None], tf.ones_like(indices), tf.reshape(count, [1])) > 0
    failed, any_failed = first(tf.logical_not(present), tf.range(count), count)
    data = padded[failed]
    with tf.control_dependencies([check_size]):
        check_decoded = tf.debugging.Assert(
            tf.logical_not(any_failed),
            [f"{signature}: {input_name}[i] does not decode (truncated or corrupt image data); i =", failed,
             "format:", _format_name(data), "length:", tf.strings.length(data)],
        )
    with tf.control_dependencies([check_decoded]):
        return tf.identity(images)


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
