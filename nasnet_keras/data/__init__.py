"""Image-classification data for NASNet: offline routes, the search split and augmentation.

`load(name, split)` returns `(uint8 image HxWxC, int64 label)` examples from whichever
route works (local IDX files, then TensorFlow Datasets), and fails with one message
that lists every route tried and how to get the data. `search_split` carves the
architecture-search held-out set out of the *training* split only (the paper keeps
the test split untouched until the end), and `pipeline` applies the paper's
augmentation (whitening, pad-and-crop, horizontal flips) and batches.
"""

from nasnet_keras.data.input_pipeline import pipeline, random_flip, random_pad_crop, standardize
from nasnet_keras.data.catalog import CATALOG, DatasetInfo, DatasetSpec
from nasnet_keras.data.sources import DATA_DIR_ENV, DatasetNotFoundError, info, load
from nasnet_keras.data.splits import search_split

__all__ = [
    "CATALOG",
    "DATA_DIR_ENV",
    "DatasetInfo",
    "DatasetNotFoundError",
    "DatasetSpec",
    "info",
    "load",
    "pipeline",
    "random_flip",
    "random_pad_crop",
    "search_split",
    "standardize",
]
