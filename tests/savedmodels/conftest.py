"""Shared, session-scoped fixtures: one tiny model and one real export, reused by every test.

A real export costs ~10-30 s on the project's 2-core machine (tracing five functions and
writing ~500 variables), so tests share one classifier export and only the EMA/backbone
test pays for a second; layout tests replace the save with a stub.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from savedmodel_helpers import CLASS_NAMES, SIZE, tiny_nasnet  # noqa: E402


@pytest.fixture(scope="session")
def classifier():
    """The tiny classifier with non-trivial BatchNorm statistics (random weights otherwise)."""
    import keras

    keras.utils.set_random_seed(0)
    model = tiny_nasnet()
    # Move the moving statistics off their (0, 1) initial values so that a round trip that
    # lost them would show.
    rng = np.random.RandomState(1)
    for variable in model.non_trainable_variables:
        if variable.path.endswith("moving_mean"):
            variable.assign(rng.normal(0, 0.1, variable.shape).astype("float32"))
        elif variable.path.endswith("moving_variance"):
            variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype("float32"))
    return model


@pytest.fixture(scope="session")
def export_base(tmp_path_factory):
    return str(tmp_path_factory.mktemp("served") / "tiny_nasnet")


@pytest.fixture(scope="session")
def exported(classifier, export_base):
    """The classifier exported once as version 1 (an ExportResult)."""
    from savedmodels import export

    return export(classifier, export_base, version=1, class_names=CLASS_NAMES, top_k=3, variant="tiny")


@pytest.fixture(scope="session")
def loaded(exported):
    import tensorflow as tf

    return tf.saved_model.load(exported.path)


@pytest.fixture(scope="session")
def images():
    """Three float images, RGB 0..255, at the model's size."""
    return np.random.RandomState(3).uniform(0, 255, (3, SIZE, SIZE, 3)).astype("float32")
