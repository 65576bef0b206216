"""The paper's CIFAR augmentation (App. A.1) as tf.data functions, and the input pipeline.

"All images are whitened and then undergone several data augmentation steps: we
randomly crop 32x32 patches from upsampled images of size 40x40 and apply random
horizontal flips." Whitening is per-image standardisation; the 40x40 images are the
32x32 ones zero-padded by 4 on each side. Because whitening comes first, the padding is
the image mean (0), so crops carry no artificial black border. The same recipe serves
any image size (28x28 Fashion-MNIST: 36x36 padded, crops back to 28x28; grayscale stays
one channel). Flips are harmless on Fashion-MNIST (clothes are left/right symmetric
classes) and are kept so every dataset gets the one recipe.
"""

from __future__ import annotations

import tensorflow as tf

from nasnet_keras.checks import check_int


def standardize(image: tf.Tensor) -> tf.Tensor:
    """Whitening: per image, subtract the mean and divide by the (adjusted) std. float32 out."""
    return tf.image.per_image_standardization(image)


def random_pad_crop(image: tf.Tensor, pad: int = 4, seed: int | None = None) -> tf.Tensor:
    """Zero-pad H and W by `pad` on each side, then crop a random window of the original size."""
    shape = tf.shape(image)
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    cropped = tf.image.random_crop(padded, shape, seed=seed)
    cropped.set_shape(image.shape)  # keep the static shape: Keras models need known H, W
    return cropped


def random_flip(image: tf.Tensor, seed: int | None = None) -> tf.Tensor:
    """Mirror left-right with probability 1/2."""
    return tf.image.random_flip_left_right(image, seed=seed)


def _as_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    try:
        height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"`image_size` must be an int or a (height, width) pair. Received: {image_size!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"`image_size` must be positive. Received: {image_size!r}")
    return height, width


def pipeline(
    ds: tf.data.Dataset,
    batch_size: int,
    training: bool,
    *,
    image_size=None,
    augment: bool = True,
    pad: int = 4,
    flip: bool = True,
    shuffle_buffer: int = 10_000,
    cache: bool = False,
    seed: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of `(float32 whitened image, int64 label)` ready for `model.fit`.

    Args:
        ds: unbatched `(uint8 image, label)` examples, as from `load` or `search_split`.
        batch_size: examples per batch.
        training: shuffle and (if `augment`) apply pad-crop and flips; otherwise only whiten.
        image_size: resize to this size first (int or (H, W)); required when images vary
            in size. Resizing happens before caching, so tiny proxy runs cache tiny images.
        pad: padding per side for the random crop (4: 32 -> 40 -> 32 as in the paper).
        cache: keep decoded (resized, uint8) images in memory after the first epoch;
            worth it for the small datasets of search children, not for ImageNet.
        seed: seeds shuffling and augmentation: the same seed gives the same run, and
            crops and flips still change from epoch to epoch.
    """
    check_int("batch_size", batch_size, minimum=1)
    check_int("pad", pad, minimum=0)
    size = _as_size(image_size)
    image_spec = ds.element_spec[0]
    if size is None and (image_spec.shape.rank != 3 or None in image_spec.shape.as_list()[:2]):
        raise ValueError(
            f"Images of varying size ({image_spec.shape}) need `image_size` to batch them. Received: image_size=None"
        )
    autotune = tf.data.AUTOTUNE
    if size is not None and tuple(image_spec.shape.as_list()[:2]) != size:

        def resize(image, label):
            image = tf.image.resize(image, size, antialias=True)
            return tf.saturate_cast(tf.round(image), tf.uint8), label

        ds = ds.map(resize, num_parallel_calls=autotune)
    if cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    def prepare(image, label):
        return standardize(image), tf.cast(label, tf.int64)

    if not (training and augment and (pad or flip)):
        ds = ds.map(prepare, num_parallel_calls=autotune)
        return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(autotune)

    # One stateless seed pair per example, drawn afresh every epoch: seeded stateful ops
    # inside `map` would restart their sequence with each new iterator (each Keras epoch)
    # and repeat the same crops and flips, while unseeded ones are not reproducible.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2, drop_remainder=True)

    def prepare_augmented(example, seed_pair):
        image, label = prepare(*example)
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed_pair, 2))
        if pad:
            shape = tf.shape(image)
            padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
            cropped = tf.image.stateless_random_crop(padded, shape, seed=crop_seed)
            cropped.set_shape(image.shape)
            image = cropped
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
        return image, label

    ds = tf.data.Dataset.zip((ds, seeds)).map(prepare_augmented, num_parallel_calls=autotune)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(autotune)
