"""Images for post-training quantization and for `nasnet predict`: files or a named dataset.

Static int8 quantization fixes each activation's range from a representative sample, so
the sample must look like what the deployed model will see, and it must arrive exactly as
the deployed model receives it: float32 RGB 0..255, NHWC, at the model's input size (the
scaling to [-1, 1] is inside every export). Two sources:

* image files (JPEG/PNG/GIF/BMP/WebP) or directories of them, decoded and resized as the
  SavedModel's `serving_bytes` signature does (one decoder for every entry point);
* a dataset of `nasnet_keras.data` (e.g. `fashion_mnist`, read offline from its IDX
  files), from its *training* split, so that the test split stays untouched for measuring
  the quantized model. Grayscale images are repeated to three channels.
"""

from __future__ import annotations

import os

import numpy as np

from nasnet_keras.checks import check_int

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
DEFAULT_SAMPLES = 200


def image_files(paths) -> list[str]:
    """The image files named by `paths` (files, or directories searched one level, sorted)."""
    files = []
    for path in paths:
        path = os.fspath(path)
        if os.path.isdir(path):
            found = sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES))
            if not found:
                raise ValueError(f"Directory {path!r} holds no images (accepted: {', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise ValueError(f"Image file not found: {path!r}")
    return files


def read_images(paths, size: tuple[int, int]) -> np.ndarray:
    """Decode image files to float32 [n, H, W, 3] RGB 0..255 at `size` (bilinear, as `serving_bytes`)."""
    import tensorflow as tf

    from savedmodels.signatures import decode_images

    images = []
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        try:
            images.append(decode_images(tf.constant([data]), size)[0].numpy())
        except tf.errors.InvalidArgumentError:
            raise ValueError(
                f"{path!r} is not a readable image (accepted: JPEG, PNG, GIF, BMP, WebP)"
            ) from None
    return np.stack(images).astype(np.float32)


def dataset_images(name: str, size: tuple[int, int], samples: int = DEFAULT_SAMPLES, *,
                   split: str = "train", data_dir: str | None = None, offset: int = 0):
    """`samples` images (and labels) of dataset `name`, as float32 [n, H, W, 3] RGB 0..255 at `size`."""
    import tensorflow as tf

    from nasnet_keras.data import load

    check_int("samples", samples, minimum=1)
    check_int("offset", offset, minimum=0)
    dataset = load(name, f"{split}[{offset}:{offset + samples}]", data_dir=data_dir, download=False)
    images, labels = [], []
    for image, label in dataset.batch(256):
        images.append(to_model_input(image, size))
        labels.append(label.numpy())
    return np.concatenate(images), np.concatenate(labels)


def to_model_input(images, size: tuple[int, int]) -> np.ndarray:
    """uint8 [n, h, w, 1 or 3] -> float32 [n, H, W, 3] 0..255 (gray repeated; bilinear resize if needed)."""
    import tensorflow as tf

    images = tf.cast(images, tf.float32)
    if images.shape[-1] == 1:
        images = tf.repeat(images, 3, axis=-1)
    if tuple(images.shape[1:3]) != tuple(size):
        images = tf.image.resize(images, size, method="bilinear")
    return images.numpy().astype(np.float32)


def load(source, size: tuple[int, int], samples: int = DEFAULT_SAMPLES, data_dir: str | None = None) -> tuple:
    """Calibration images from `source`: a dataset name, or image files / directories.

    Returns (float32 [n, H, W, 3] RGB 0..255, a description for the model card).
    """
    from nasnet_keras.data import CATALOG

    check_int("calibration_samples", samples, minimum=1)
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not sources:
        raise ValueError("Calibration data is empty: name a dataset (e.g. fashion_mnist) or image files")
    if len(sources) == 1 and os.fspath(sources[0]) in CATALOG and not os.path.exists(os.fspath(sources[0])):
        name = os.fspath(sources[0])
        images, _ = dataset_images(name, size, samples, data_dir=data_dir)
        return images, {"dataset": name, "split": f"train[:{len(images)}]", "images": int(len(images))}
    if len(sources) == 1 and not os.path.exists(os.fspath(sources[0])):
        raise ValueError(
            f"Calibration data {os.fspath(sources[0])!r} is neither a dataset ({', '.join(CATALOG)}) nor an "
            "image file or directory"
        )
    files = image_files(sources)
    if not files:
        raise ValueError(f"No calibration images in {sources!r}")
    files = files[:samples]
    return read_images(files, size), {"files": [os.path.basename(f) for f in files[:20]], "images": len(files)}
