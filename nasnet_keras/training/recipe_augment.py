"""Augmentations of the final-model recipes that the search-time pipeline does not have.

* `cutout` (DeVries & Taylor 2017), which the paper's best CIFAR results use (Table 1):
  one square per image, its centre drawn uniformly over the whole image so the square
  may hang over the border (then only its inside part is masked), set to zero. It runs
  after whitening, so zero is the image mean. It works on batches: one centre per image.
* Inception-style training crops for ImageNet (paper App. A.7 uses "the same data
  augmentation procedures" as Inception-v3 [60], i.e. TF-slim's inception_preprocessing):
  a random box covering 5%-100% of the image with aspect ratio 3/4-4/3, resized to the
  model's input, and a central 87.5% crop for evaluation. Pixels are scaled to [-1, 1],
  the range keras.applications' NASNet weights expect.

CIFAR whitening, pad-and-crop and flips come from `nasnet_keras.data` (shared with the
search), so both phases augment identically.
"""

from __future__ import annotations

import tensorflow as tf

from nasnet_keras.checks import check_int


def cutout_mask(height, width, size: int, centers_y, centers_x, dtype=tf.float32) -> tf.Tensor:
    """[N, H, W, 1] mask: 0 on the `size` x `size` square around each centre, 1 elsewhere.

    The square covers rows `[cy - size // 2, cy - size // 2 + size)` (and likewise columns),
    clipped to the image: the exact area DeVries & Taylor's reference implementation masks.
    """
    centers_y = tf.convert_to_tensor(centers_y, tf.int32)
    centers_x = tf.convert_to_tensor(centers_x, tf.int32)
    top = (centers_y - size // 2)[:, None, None]
    left = (centers_x - size // 2)[:, None, None]
    rows = tf.range(height)[None, :, None]
    cols = tf.range(width)[None, None, :]
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return tf.cast(tf.logical_not(inside), dtype)[..., None]


def cutout(images: tf.Tensor, size: int, seed: int | None = None) -> tf.Tensor:
    """Zero one random `size` x `size` square (centre uniform over the image) in each image of a batch."""
    check_int("size", size, minimum=0, hint=" (0 disables cutout)")
    if size == 0:
        return images
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    # One draw for both coordinates: two ops with the same seed would draw equal numbers.
    unit = tf.random.uniform([batch, 2], seed=seed)
    centers = tf.cast(tf.floor(unit * tf.cast(tf.stack([height, width]), tf.float32)), tf.int32)
    return images * cutout_mask(height, width, size, centers[:, 0], centers[:, 1], images.dtype)


def inception_crop(
    image: tf.Tensor,
    size: int,
    *,
    min_object_covered: float = 0.1,
    aspect_ratio_range: tuple[float, float] = (0.75, 1.33),
    area_range: tuple[float, float] = (0.05, 1.0),
    max_attempts: int = 100,
    seed: int = 0,
) -> tf.Tensor:
    """A random Inception-style crop of one image, resized (bilinear) to `size` x `size`. float32 out.

    When no box satisfying the constraints is found in `max_attempts`, the whole image is
    used (TF's fallback, as in slim).
    """
    whole_image = tf.zeros([1, 0, 4], tf.float32)  # no boxes: sample relative to the whole image
    begin, crop_size, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=whole_image,
        seed=seed,
        min_object_covered=min_object_covered,
        aspect_ratio_range=aspect_ratio_range,
        area_range=area_range,
        max_attempts=max_attempts,
        use_image_if_no_bounding_boxes=True,
    )
    crop = tf.slice(image, begin, crop_size)
    return tf.image.resize(crop, (size, size), method="bilinear")


def central_crop(image: tf.Tensor, size: int, central_fraction: float = 0.875) -> tf.Tensor:
    """Evaluation crop: the central `central_fraction` of the image, resized to `size`. float32 out."""
    image = tf.image.central_crop(image, central_fraction)
    return tf.image.resize(image, (size, size), method="bilinear")


def to_unit_range(image: tf.Tensor) -> tf.Tensor:
    """[0, 255] -> [-1, 1] (keras.applications' "tf" mode for NASNet)."""
    return tf.cast(image, tf.float32) / 127.5 - 1.0
