"""Two real `nasnet train` workers on localhost (CPU) under MultiWorkerMirroredStrategy.

* lockstep: both workers finish with bit-identical weights, equal to one process trained
  with the same global batch (16) and seed to 1e-5 (deterministic settings:
  multi_worker_helpers.DETERMINISTIC), and only the chief wrote the run directory;
* fault: SIGKILL the non-chief worker mid-training; the chief stops within a bounded
  time with exit status 75 and a message saying to restart; both are restarted with the
  same TF_CONFIG, resume at the last checkpoint with the schedule's learning rate, and
  finish the planned steps;
* different recipes on the two workers: both exit with status 2 naming the field.
"""

import math
import os
import time

import keras
import numpy as np
import pytest

from multi_worker_helpers import FOUND, finish_job, free_ports, start_job, train_command
from nasnet_keras import cli
from nasnet_keras.training import RunDirectory

LEARNING_RATE = 0.05 * 16 / 32  # base_learning_rate 0.05 per 32 images, global batch 16


@pytest.fixture
def genotype_file(tmp_path):
    path = str(tmp_path / "found.json")
    FOUND.save(path)
    return path


def final_weights(directory):
    model = keras.saving.load_model(os.path.join(directory, "final.keras"), compile=False)
    return [np.asarray(w) for w in model.get_weights()]


@pytest.mark.slow
def test_two_workers_train_in_lockstep_like_one_process(tmp_path, genotype_file, capsys):
    directory = str(tmp_path / "job")
    arguments = train_command(directory, genotype_file, "--save-every-steps", "4")
    workers = start_job(arguments + ["--strategy", "multi-worker"], free_ports(2), str(tmp_path), "lockstep")
    assert finish_job(workers) == [0, 0], [w.output()[-2000:] for w in workers]
    chief, other = (w.summary() for w in workers)
    assert chief["final_step"] == other["final_step"] == chief["total_steps"] == 8  # 128 images / 16
    assert chief["weights_sha256"] == other["weights_sha256"]  # identical to the bit
    run = RunDirectory(directory)
    described = [e for e in run.events() if e["event"] == "distribution"][0]
    assert (described["workers"], described["replicas"], described["per_replica_batch_size"]) == (2, 2, 8)
    assert described["learning_rate"] == pytest.approx(LEARNING_RATE)
    assert {e.get("task") for e in run.events()} == {"worker:0"}  # only the chief wrote
    assert [step for step, _ in run.checkpoints()] == [4, 8]
    assert not [name for name in os.listdir(directory) if "worker" in name or "partial" in name]

    # One process, same global batch and seed, the default strategy (one device).
    single = str(tmp_path / "single")
    assert cli.main(train_command(single, genotype_file, "--save-every-steps", "4")) == 0
    out = capsys.readouterr().out
    assert '"final_step": 8' in out
    started = [e for e in RunDirectory(single).events() if e["event"] == "start"][0]
    assert started["learning_rate"] == pytest.approx(LEARNING_RATE)  # the same rule on one device
    largest = 0.0
    for ours, theirs in zip(final_weights(directory), final_weights(single), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
        largest = max(largest, float(np.max(np.abs(ours - theirs))) if ours.size else 0.0)
    with capsys.disabled():
        print(f"\n2 workers vs 1 process after 8 steps: largest weight difference {largest:.2e}")


@pytest.mark.slow
def test_a_killed_worker_stops_the_job_and_a_restart_resumes_it(tmp_path, genotype_file):
    directory = str(tmp_path / "job")
    total = 16  # one epoch of 256 images, so that the resumed run is a single fit() (one trace)
    arguments = train_command(directory, genotype_file, "--save-every-steps", "4", examples=256)
    ports = free_ports(2)
    chief, other = start_job(arguments, ports, str(tmp_path), "first")  # --strategy auto
    run = RunDirectory(directory)
    deadline = time.monotonic() + 500
    while time.monotonic() < deadline:
        latest = run.latest_checkpoint()
        if latest and latest[0] >= 4:
            break
        if chief.process.poll() is not None or other.process.poll() is not None:
            pytest.fail(f"a worker exited before the kill:\n{chief.output()[-2000:]}\n{other.output()[-2000:]}")
        time.sleep(0.1)
    else:
        pytest.fail("no checkpoint appeared in time")
    other.kill()
    killed_at = time.monotonic()
    code = chief.wait(timeout=180)
    waited = time.monotonic() - killed_at
    assert code == 75, chief.output()[-3000:]
    message = chief.output()
    assert "another worker of this multi-worker job failed or stopped responding" in message
    assert "Restart every worker with the same command and TF_CONFIG" in message
    print(f"the chief stopped {waited:.1f} s after its peer was killed")
    checkpoint_step = run.latest_checkpoint()[0]
    assert 4 <= checkpoint_step < total

    workers = start_job(arguments, ports, str(tmp_path), "restart")
    assert finish_job(workers) == [0, 0], [w.output()[-2000:] for w in workers]
    summaries = [w.summary() for w in workers]
    for summary in summaries:
        assert summary["resumed"] and summary["start_step"] == checkpoint_step
        assert summary["final_step"] == summary["total_steps"] == total
    assert summaries[0]["weights_sha256"] == summaries[1]["weights_sha256"]
    resume = [e for e in run.events() if e["event"] == "resume"][0]  # the restart (later ones: next fit() calls)
    assert resume["step"] == checkpoint_step
    expected_lr = LEARNING_RATE * 0.5 * (1 + math.cos(math.pi * checkpoint_step / total))  # cosine, one period
    assert resume["learning_rate"] == pytest.approx(expected_lr, rel=1e-5)
    after = [e["step"] for e in run.events() if e["event"] == "checkpoint" and e["time"] > resume["time"]]
    assert after == list(range(checkpoint_step + 4, total + 1, 4))
    assert run.events()[-1]["event"] == "end" and run.events()[-1]["step"] == total


def test_workers_started_with_different_recipes_fail_naming_the_field(tmp_path, genotype_file):
    directory = str(tmp_path / "job")
    ports = free_ports(2)
    from multi_worker_helpers import Worker

    workers = [Worker(train_command(directory, genotype_file, "--set", f"epochs={epochs}"), ports, i,
                      str(tmp_path / f"worker{i}.log")) for i, epochs in enumerate((1, 3))]
    assert finish_job(workers, timeout=300) == [2, 2]
    for worker in workers:
        err = worker.output()
        assert "nasnet train: error: The workers of this job disagree on how to train: worker:1 differs from " \
               "worker:0 in recipe.epochs: 1 != 3" in err, err[-2000:]
        assert "Traceback" not in err
    assert not os.path.exists(directory)  # refused before anything was written
