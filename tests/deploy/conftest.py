"""Exports shared by the deployment tests: each runtime format converted once per session.

A conversion costs seconds to minutes on the project's 2-core machine (the TFLite
converter is the slowest), so the parity, card and `nasnet predict` tests share one export
per format of the small searched-genotype model; the NASNet-A Mobile exports are made once,
in their own (slow) module.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from deploy_helpers import CLASS_NAMES, RUNTIME_FORMATS, searched_model  # noqa: E402


@pytest.fixture(scope="session")
def searched():
    return searched_model()


@pytest.fixture(scope="session")
def searched_exports(searched, tmp_path_factory):
    """{format: DeployResult} of the searched model, fp32, with class names (SavedModel included)."""
    from savedmodels import deploy

    base = tmp_path_factory.mktemp("deploy")
    return {
        fmt: deploy.export(searched, str(base / fmt), 1, format=fmt, class_names=CLASS_NAMES, variant="tiny_cifar",
                           source="test")
        for fmt in ("saved_model",) + RUNTIME_FORMATS
    }
