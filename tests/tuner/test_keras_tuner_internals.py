"""Fails loudly if keras-tuner moves the private parts `tuner/keras_tuner_internals.py` reads."""

import os

import keras_tuner
import pytest

from tuner import keras_tuner_internals as internals
from tuner.oracles import RandomOracle
from tuner.space import SearchSpace


def test_the_installed_keras_tuner_is_the_checked_one():
    checked = internals.CHECKED_VERSION.rsplit(".", 1)[0]
    assert keras_tuner.__version__.startswith(checked + "."), (
        f"keras-tuner {keras_tuner.__version__} is installed; tuner/keras_tuner_internals.py was checked against "
        f"{internals.CHECKED_VERSION}: re-check every private use listed there, then update CHECKED_VERSION"
    )


def test_oracle_internals(tmp_path):
    oracle = RandomOracle(SearchSpace(num_blocks=1), seed=0, max_trials=2)
    internals.set_project_dir(oracle, str(tmp_path), "project")
    assert internals.project_dir(oracle) == os.path.join(str(tmp_path), "project")
    assert internals.oracle_file(oracle) == os.path.join(str(tmp_path), "project", "oracle.json")
    queue = internals.retry_queue(oracle)
    assert queue == [] and queue is oracle._retry_queue  # the live list: removing an id cancels a re-run
    oracle.save()
    assert os.path.exists(internals.oracle_file(oracle))


@pytest.mark.parametrize("tuner_id, chief, worker", [(None, False, False), ("chief", True, False),
                                                     ("worker0", False, True)])
def test_distributed_roles(monkeypatch, tuner_id, chief, worker):
    for name in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        monkeypatch.delenv(name, raising=False)
    if tuner_id is not None:
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
        monkeypatch.setenv("KERASTUNER_TUNER_ID", tuner_id)
    assert internals.is_chief_oracle() is chief
    assert internals.is_distributed_worker() is worker
