"""Test-suite wide settings: quiet TensorFlow, deterministic seeds, the `slow` marker."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: builds full-size models (runs in `make test`; deselect with -m 'not slow')")


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Each test starts with a clean Keras graph/name scope and fixed seeds."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield
