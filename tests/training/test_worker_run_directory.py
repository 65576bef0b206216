"""Under multi-worker training only the chief writes the run directory (in-process, no cluster)."""

import os
import types

import keras
import numpy as np

from nasnet_keras.training.multi_worker_run import WorkerRunDirectory


def _distribution(is_chief: bool):
    barriers = []
    return types.SimpleNamespace(is_chief=is_chief, task="worker:0" if is_chief else "worker:1",
                                 barrier=barriers.append, barriers=barriers)


def _goes_through_every_write(run_dir):
    run_dir.start({"run": "same"})
    run_dir.log_event("started", step=0)
    with run_dir.output("history.csv") as path:
        with open(path, "w") as f:
            f.write("epoch,loss\n")
        scratch = os.path.dirname(path)
    return scratch


def test_a_non_chief_worker_leaves_the_shared_directory_untouched(tmp_path):
    directory = tmp_path / "run"
    distribution = _distribution(is_chief=False)
    run_dir = WorkerRunDirectory(directory, distribution)
    scratch = _goes_through_every_write(run_dir)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    saved = run_dir.save(model, step=4)

    assert not directory.exists() or not any(directory.rglob("*"))
    assert not os.path.exists(scratch) and not os.path.exists(saved)  # its temporary copies are gone too
    assert distribution.barriers == ["while checkpoint step 4 was saved"]  # it still meets the chief


def test_the_chief_writes_the_same_calls_into_the_shared_directory(tmp_path):
    directory = tmp_path / "run"
    run_dir = WorkerRunDirectory(directory, _distribution(is_chief=True))
    _goes_through_every_write(run_dir)
    written = sorted(p.name for p in directory.rglob("*") if p.is_file())
    assert "history.csv" in written and len(written) >= 3  # manifest, events and the output
    events = run_dir.events()
    assert [e["event"] for e in events] == ["started"] and events[0]["task"] == "worker:0"
    np.testing.assert_equal(open(directory / "history.csv").read(), "epoch,loss\n")
