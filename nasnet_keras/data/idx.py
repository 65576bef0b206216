"""A reader for IDX files (the MNIST / Fashion-MNIST format), gzipped or not.

This is the offline route: Debian's `dataset-fashion-mnist` installs exactly these files,
so the whole package (search, demo, tests) can run on real images without a network.
"""

from __future__ import annotations

import functools
import gzip
import os

import numpy as np

# IDX type codes (third magic byte) -> numpy dtype; multi-byte types are big-endian.
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# Split name -> file prefix used by the MNIST family.
SPLIT_PREFIXES = {"train": "train", "test": "t10k"}


def find_idx_pair(directory: str, split: str) -> tuple[str, str] | None:
    """Paths of the (images, labels) IDX files of `split` in `directory`, or None."""
    prefix = SPLIT_PREFIXES[split]
    found = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        for suffix in (".gz", ""):
            path = os.path.join(directory, f"{prefix}-{kind}{suffix}")
            if os.path.isfile(path):
                found.append(path)
                break
        else:
            return None
    return found[0], found[1]


def read_idx(path: str) -> np.ndarray:
    """The array stored in one IDX file; raises ValueError naming the file if it is not IDX."""
    stat = os.stat(path)
    return _read_idx_cached(os.path.abspath(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path: str, _mtime_ns: int, _size: int) -> np.ndarray:
    # Cached per (path, mtime, size): a search reads the training split several times
    # (held-out split, subsets, retraining) and decompressing 26 MB each time is waste.
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: cannot read IDX file ({error})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {data[:4]!r})")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{path}: truncated or corrupt IDX file ({len(data)} bytes, header says {expected})")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    array.flags.writeable = False
    return array


def load_idx_split(directory: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images N x H x W x 1 uint8, labels N int64) of one split stored in `directory`."""
    pair = find_idx_pair(directory, split)
    if pair is None:
        raise FileNotFoundError(f"no {SPLIT_PREFIXES[split]}-images-idx3-ubyte[.gz] / labels pair in {directory}")
    images, labels = read_idx(pair[0]), read_idx(pair[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"{directory}: IDX images {images.shape} and labels {labels.shape} do not form a dataset "
            "(expected N x H x W images and N labels)"
        )
    return images[..., None], labels.astype(np.int64)
