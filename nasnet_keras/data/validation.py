"""Labels outside `0..classes-1` are an error where the data is read, not a silent zero target.

`tf.one_hot` turns an out-of-range label into an all-zero target, whose cross-entropy
is 0: a run on such data "trains" to a loss of 0.0 and saves a model without a word.
Every route of `nasnet_keras.data.load` (and so training, search and the demo, which all
read through it) therefore checks the labels it returns: arrays read from files are
checked at once, whole (cheap: one pass over the labels), streamed TFDS examples by an
assertion in the pipeline that fails at the first bad example.
"""

from __future__ import annotations

import numpy as np


class LabelRangeError(ValueError):
    """Labels outside the dataset's classes: the data is wrong, so no other route is tried."""


def check_label_array(labels: np.ndarray, num_classes: int, dataset: str, where: str) -> None:
    """Raise ValueError naming the bad labels if any is outside `0..num_classes-1`."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        values = np.unique(labels[bad])
        shown = ", ".join(str(int(v)) for v in values[:5]) + (", ..." if len(values) > 5 else "")
        raise LabelRangeError(
            f"Dataset {dataset!r} has {int(bad.sum())} of {labels.size} labels outside 0..{num_classes - 1} "
            f"(its {num_classes} classes) in {where}: {shown} (first at index {int(np.argmax(bad))}). "
            "Fix the label file, or use a dataset whose catalog entry has that many classes"
        )


def assert_labels_in_range(ds, num_classes: int, dataset: str):
    """`ds` of (image, label) with a check that fails on the first label outside `0..num_classes-1`."""
    import tensorflow as tf

    def check(image, label):
        ok = tf.logical_and(label >= 0, label < num_classes)
        with tf.control_dependencies([tf.debugging.Assert(
                ok, [f"Dataset {dataset!r}: a label is outside 0..{num_classes - 1}; label =", label])]):
            return image, tf.identity(label)

    return ds.map(check)
