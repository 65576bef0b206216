"""Test-suite wide settings: quiet TensorFlow, deterministic seeds, the `slow` marker."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: builds full-size models (runs in `make test`; deselect with -m 'not slow')")


# Directories whose session-scoped fixtures (exported models, trained detectors) are costly:
# under pytest-xdist (`make test` runs two workers) all their tests go to one worker, so
# each fixture is built once, not once per worker.
SHARED_FIXTURE_DIRECTORIES = ("deploy", "detection", "savedmodels")


def pytest_collection_modifyitems(config, items):
    """Give every test an `xdist_group`: its directory (see above) or else its file.

    With `--dist loadgroup` a group runs on one worker, so module- and session-scoped
    fixtures are built once and tests of a file keep their order; without xdist the
    marker does nothing.
    """
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        relative = os.path.relpath(str(item.path), tests_dir)
        top = relative.split(os.sep)[0]
        group = top if top in SHARED_FIXTURE_DIRECTORIES else relative
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Each test starts with a clean Keras graph/name scope and fixed seeds."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield
