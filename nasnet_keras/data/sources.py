"""`load` and `info`: one dataset name, several routes to its images, one clear failure.

Routes are tried in order and the first that works wins:

1. Local IDX files (MNIST family only) in `data_dir` if given, else in the directory
   named by the environment variable `NASNET_KERAS_DATA_DIR`, then in the directory a
   distribution package installs (`/usr/share/datasets/fashion-mnist` for Debian's
   `dataset-fashion-mnist`). An explicit `data_dir` is honoured alone, so a caller who
   names a directory never silently gets data from elsewhere.
2. TensorFlow Datasets (`tfds.load`) with the same `data_dir` (or the environment
   variable, or TFDS' own default). It downloads (announced on stderr) only when asked
   (`download=True`) or, by default, when no data directory was named: an explicit
   `data_dir` is read or rejected with the reason, never downloaded into. ImageNet needs its
   archives in a `manual_dir`. A download is bounded in time
   (`NASNET_KERAS_DOWNLOAD_TIMEOUT`, default 1800 s) and leaves nothing behind when it fails
   or is stopped (`nasnet_keras.data.download`).

When every route fails the caller gets one `DatasetNotFoundError` (both a
`FileNotFoundError` and a `ValueError`, so command lines print it cleanly) that lists each
route with the reason it failed and how to get the data.
"""

from __future__ import annotations

import os
import re
import sys

import numpy as np

from nasnet_keras.data import download as tfds_download
from nasnet_keras.data import idx
from nasnet_keras.data.catalog import DatasetInfo, DatasetSpec, get_spec
from nasnet_keras.data.validation import LabelRangeError, assert_labels_in_range, check_label_array

DATA_DIR_ENV = "NASNET_KERAS_DATA_DIR"


class DatasetNotFoundError(FileNotFoundError, ValueError):
    """No route could provide the requested data; the message lists every route tried."""


# ---------------------------------------------------------------------------- split specs
_SPLIT_RE = re.compile(r"^(?P<base>[a-z]+)(?:\[(?P<start>-?\d+%?)?:(?P<stop>-?\d+%?)?\])?$")


def parse_split(split: str, spec: DatasetSpec) -> tuple[str, slice]:
    """`"train"`, `"train[:500]"`, `"train[100:600]"` or `"test[:10%]"` -> (base split, slice).

    The same TFDS-style syntax is accepted by every route so tiny runs can read a few
    hundred images without materialising the whole split.
    """
    match = _SPLIT_RE.match(split) if isinstance(split, str) else None
    if match is None:
        raise ValueError(
            f"Invalid split {split!r} for dataset {spec.name!r}. Accepted: a split name "
            f"({', '.join(spec.splits)}) optionally sliced like 'train[:500]' or 'train[10%:20%]'"
        )
    base = match["base"]
    if base not in spec.splits:
        raise ValueError(f"Dataset {spec.name!r} has no split {base!r}. Splits: {', '.join(spec.splits)}")
    size = spec.splits[base]

    def bound(text):
        if text is None:
            return None
        if text.endswith("%"):
            return int(round(size * int(text[:-1]) / 100))
        return int(text)

    return base, slice(bound(match["start"]), bound(match["stop"]))


# ----------------------------------------------------------------------------- the routes
def _idx_search_dirs(spec: DatasetSpec, data_dir: str | None) -> list[str]:
    if data_dir is not None:
        return [os.fspath(data_dir)]
    dirs = []
    if os.environ.get(DATA_DIR_ENV):
        dirs.append(os.environ[DATA_DIR_ENV])
    if spec.system_dir:
        dirs.append(spec.system_dir)
    return dirs


def _load_idx(spec: DatasetSpec, directory: str, base: str, part: slice):
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory} {'is not a directory' if os.path.exists(directory) else 'does not exist'}")
    candidates = [directory] + [os.path.join(directory, sub) for sub in spec.idx_dirs]
    for candidate in candidates:
        if idx.find_idx_pair(candidate, base) is not None:
            images, labels = idx.load_idx_split(candidate, base)
            check_label_array(labels[part], spec.num_classes, spec.name, idx.find_idx_pair(candidate, base)[1])
            return _from_arrays(images[part], labels[part])
    prefix = idx.SPLIT_PREFIXES[base]
    raise FileNotFoundError(
        f"no {prefix}-images-idx3-ubyte[.gz] + {prefix}-labels-idx1-ubyte[.gz] in "
        + " or ".join(candidates)
    )


def _from_arrays(images: np.ndarray, labels: np.ndarray):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((np.ascontiguousarray(images), labels.astype(np.int64)))


def _tfds_data_dir(data_dir: str | None) -> str | None:
    if data_dir is not None:
        return os.fspath(data_dir)
    return os.environ.get(DATA_DIR_ENV) or None


def _load_tfds(spec: DatasetSpec, split: str, data_dir: str | None, manual_dir: str | None):
    """Read prepared TFDS data; never downloads (a download goes through `_download_tfds`)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    ds = tfds.load(spec.tfds_name, split=split, data_dir=data_dir, download=False, as_supervised=True,
                   shuffle_files=False)
    ds = ds.map(lambda image, label: (tf.cast(image, tf.uint8), tf.cast(label, tf.int64)))
    return assert_labels_in_range(ds, spec.num_classes, spec.name)


def _download_tfds(spec: DatasetSpec, data_dir: str, manual_dir: str | None, timeout: float | None) -> None:
    """Download and prepare into `data_dir` within `timeout` s, or raise `DownloadFailed` leaving no debris."""
    tfds_download.download_and_prepare(spec.tfds_name, data_dir, manual_dir, timeout)


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def load(name: str, split: str, data_dir: str | None = None, *, download: bool | None = None,
         manual_dir: str | None = None):
    """Examples `(uint8 image HxWxC, int64 label)` of `split` of dataset `name`.

    Args:
        name: a catalog name (`nasnet_keras.data.CATALOG`): cifar10, cifar100, fashion_mnist,
            mnist, imagenet2012.
        split: a split name, optionally sliced TFDS-style (`"train[:1000]"`).
        data_dir: where the data lives: a directory of IDX files (MNIST family) or a TFDS
            data directory. Defaults to `$NASNET_KERAS_DATA_DIR`, then system locations.
        download: let TFDS download missing data (needs internet; announced on stderr). None (the
            default): only when no data directory was named (`data_dir` or the environment
            variable), or a `manual_dir` asks ImageNet to be prepared.
        manual_dir: directory holding manually downloaded archives (ImageNet).

    The order is deterministic (files are not shuffled), which `search_split` relies on.
    """
    spec = get_spec(name)
    base, part = parse_split(split, spec)
    attempts: list[str] = []
    if spec.idx_dirs:
        for directory in _idx_search_dirs(spec, data_dir):
            try:
                return _load_idx(spec, directory, base, part)
            except LabelRangeError:
                raise
            except (OSError, ValueError) as error:
                attempts.append(f"local IDX files in {directory}: {_short(error)}")
    if spec.tfds_name:
        tfds_dir = _tfds_data_dir(data_dir)
        where = tfds_dir or "TFDS' default data_dir"
        if download is None:
            # A directory the user named holds data or is rejected: it is never downloaded into
            # unasked (ImageNet's manual_dir asks for its preparation explicitly).
            download = tfds_dir is None or manual_dir is not None
        try:
            return _load_tfds(spec, split, tfds_dir, manual_dir)
        except Exception as error:  # TFDS raises many types (AssertionError, DownloadError, ...)
            attempts.append(f"TensorFlow Datasets '{spec.tfds_name}' in {where} (download=False): {_short(error)}")
        if download:
            timeout = tfds_download.download_timeout(manual=manual_dir is not None)
            target = tfds_dir or tfds_download.default_data_dir()
            limit = "no time limit" if timeout is None else f"stops after {timeout:g} s"
            print(f"nasnet_keras.data: {spec.name!r} is not prepared in {where}; downloading and preparing it with "
                  f"TensorFlow Datasets into {target} (needs internet; {limit}, "
                  f"${tfds_download.DOWNLOAD_TIMEOUT_ENV}; to stay offline pass data_dir=DIR / --data-dir DIR "
                  "with the data, or download=False)", file=sys.stderr, flush=True)
            try:
                _download_tfds(spec, target, manual_dir, timeout)
            except tfds_download.DownloadFailed as failure:
                if failure.timed_out:
                    raise DatasetNotFoundError(_timeout_message(spec, split, target, timeout, attempts)) from None
                attempts.append(f"TensorFlow Datasets '{spec.tfds_name}' download into {target}: {failure.reason} "
                                "(its partial files were removed)")
            else:
                try:
                    return _load_tfds(spec, split, target, manual_dir)
                except Exception as error:
                    attempts.append(f"TensorFlow Datasets '{spec.tfds_name}' in {target} after downloading: "
                                    f"{_short(error)}")
    raise DatasetNotFoundError(_not_found_message(spec, split, data_dir, attempts))


def _timeout_message(spec: DatasetSpec, split: str, target: str, timeout: float, attempts: list[str]) -> str:
    """One line: a stopped download is the whole story (the routes before it only lacked the data)."""
    tried = [attempt.split(":")[0] for attempt in attempts]
    return (f"Dataset {spec.name!r} (split {split!r}) could not be loaded: the TensorFlow Datasets download into "
            f"{target} did not finish within {timeout:g} s (${tfds_download.DOWNLOAD_TIMEOUT_ENV}) and was stopped; "
            f"its partial files were removed. Tried: {'; '.join(tried + ['a download'])}. To stay offline, put the "
            f"data in a directory and pass --data-dir DIR (data_dir=DIR); to wait longer, set "
            f"{tfds_download.DOWNLOAD_TIMEOUT_ENV}=SECONDS (or 'none')")


def _not_found_message(spec: DatasetSpec, split: str, data_dir, attempts: list[str]) -> str:
    lines = [f"Dataset {spec.name!r} (split {split!r}) could not be loaded. Routes tried:"]
    lines += [f"  {i}. {attempt}" for i, attempt in enumerate(attempts, 1)]
    lines.append("How to get it:")
    idx_hint = (f"or put the four IDX files (train/t10k images and labels, .gz or not) in a directory "
                f"and pass data_dir=DIR (--data-dir DIR) or set {DATA_DIR_ENV}=DIR")
    tfds_hint = (f"TensorFlow Datasets: on a machine with internet run "
                 f"tfds.load('{spec.tfds_name}', data_dir=DIR) (or `tfds build {spec.tfds_name} --data_dir DIR`), "
                 f"copy DIR here and pass data_dir=DIR; or allow download=True")
    hints = (spec.install_hint, idx_hint if spec.idx_dirs else None, spec.manual_download,
             tfds_hint if spec.tfds_name else None)
    lines += [f"  - {hint}" for hint in hints if hint]
    return "\n".join(lines)


def info(name: str) -> DatasetInfo:
    """Classes, image shape, split sizes and class names of `name`, without reading images
    (every answer comes from the catalog, so it works offline)."""
    spec = get_spec(name)
    return DatasetInfo(
        name=spec.name,
        num_classes=spec.num_classes,
        image_shape=spec.image_shape,
        splits=dict(spec.splits),
        class_names=spec.class_names or _tfds_class_names(spec),
    )


def _tfds_class_names(spec: DatasetSpec) -> tuple[str, ...]:
    # TFDS ships some label files with its code (ImageNet's WordNet ids); reading them
    # needs no data and no network. Anything else falls back to the class indices.
    names: tuple[str, ...] = ()
    if spec.tfds_name:
        try:
            import tensorflow_datasets as tfds

            names = tuple(tfds.builder(spec.tfds_name).info.features["label"].names)
        except Exception:
            names = ()
    if len(names) != spec.num_classes or names == tuple(str(i) for i in range(spec.num_classes)):
        return tuple(str(i) for i in range(spec.num_classes))
    return names
