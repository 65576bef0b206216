"""#11 with real children: `nasnet search --workers 2` runs a chief and two worker processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.tuner.distributed_helpers import REPO, python_env
from tuner import history
from tuner.state_journal import read_state


@pytest.mark.slow
def test_nasnet_search_with_two_workers_updates_the_controller_and_records_every_trial_once(tmp_path):
    directory = tmp_path / "search"
    command = [sys.executable, "-m", "nasnet_keras.cli", "search", "--dataset", "fashion_mnist", "--strategy", "ppo",
               "--max-trials", "4", "--epochs", "1", "--filters", "4", "--num-cells", "1", "--num-blocks", "1",
               "--subset", "64", "--validation-size", "32", "--image-size", "16", "--batch-size", "64",
               "--run-eagerly", "yes", "--controller-batch", "2", "--verbose", "0", "--directory", str(directory),
               "--workers", "2"]
    run = subprocess.run(command, cwd=REPO, env=python_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:]
    lines = re.findall(r"^Trial (\d+)/4 \| worker (\S+) \| val_accuracy [\d.]+ \| best [\d.]+ \| [\d.]+ trials/h \| "
                       r"ETA \d+:\d\d:\d\d$", run.stdout, flags=re.M)
    assert sorted(trial for trial, _ in lines) == ["0", "1", "2", "3"], run.stdout[-4000:]
    workers = {worker for _, worker in lines}
    assert len(workers) == 2 and all(w.startswith(("worker0-", "worker1-")) for w in workers), workers
    project = directory / "ppo"
    state = read_state(str(project))  # oracle.json + its journal
    assert sorted(state["end_order"]) == ["0", "1", "2", "3"]  # every trial recorded once
    assert state["ppo_oracle"]["ppo"]["num_updates"] == 2 and state["ppo_oracle"]["pending"] == {}
    assert [r.status for r in history.read_trials(str(project))] == ["COMPLETED"] * 4
    assert os.stat(directory / ".search-token").st_mode & 0o777 == 0o600  # generated, read by the workers
    assert len(os.listdir(directory / "logs")) == 2
    assert "best_genotype" in run.stdout  # the chief wrote the report
