"""#11: a distributed search that survives its workers and its chief (real processes on localhost).

Trials cost a fixed time (tuner.distributed.fixed_cost: the real chief, gRPC and oracle, a
sleep instead of training), so the tests exercise the machinery in seconds: a worker and
then the chief are SIGKILLed mid-trial, and every trial must still be recorded exactly
once with nothing completed lost. `test_distributed_search.py` runs real children.
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.tuner.distributed_helpers import (InProcessChief, free_port, read, run_one_trial, start_process,
                                             wait_for)
from tuner.distributed import fixed_cost, protocol
from tuner.distributed.lock import ChiefLock
from tuner.state_journal import read_state

MAX_TRIALS = 16
LEASE = 4.0


def _progress(log: str, worker: str | None = None) -> list[str]:
    name = re.escape(worker) if worker else r"\S+"
    pattern = rf"^Trial (\d+)/{MAX_TRIALS} \| worker {name} \|"
    return re.findall(pattern, log, flags=re.M)


@pytest.mark.slow
def test_search_survives_a_killed_worker_and_a_killed_chief(tmp_path, strategy="ppo"):
    """The PPO search with real processes (the random strategy: the in-process test below)."""
    directory = tmp_path / "search"
    args = ["-m", "tuner.distributed.fixed_cost", "--directory", str(directory), "--strategy", strategy,
            "--max-trials", str(MAX_TRIALS), "--seconds", "1.0", "--controller-batch", "2",
            "--lease-timeout", str(LEASE), "--chief-timeout", "180", "--max-retries", "1"]
    env = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(free_port())}
    logs = {name: str(tmp_path / f"{name}.log") for name in ("chief", "chief2", "worker-a", "worker-b")}
    processes = {"chief": start_process(args, logs["chief"], KERASTUNER_TUNER_ID="chief", **env)}
    try:
        wait_for(lambda: "serving the oracle" in read(logs["chief"]), 180, "the chief")
        for name in ("worker-a", "worker-b"):
            processes[name] = start_process(args, logs[name], KERASTUNER_TUNER_ID=name, **env)
        # 1. SIGKILL worker-a in the middle of a trial (0.4 s into a 1 s sleep).
        wait_for(lambda: _progress(read(logs["chief"]), "worker-a"), 180, "a trial of worker-a")
        wait_for(lambda: _progress(read(logs["chief"]), "worker-b"), 60, "a trial of worker-b")
        mark = len(_progress(read(logs["chief"]), "worker-a"))
        wait_for(lambda: len(_progress(read(logs["chief"]), "worker-a")) > mark, 30, "worker-a's next trial")
        processes["worker-a"].send_signal(signal.SIGKILL)
        processes["worker-a"].wait()
        # Its trial is taken back within the lease and re-run by worker-b with the same values.
        wait_for(lambda: "lease of worker-a expired" in read(logs["chief"]), 6 * LEASE, "the lease to expire")
        lost = re.search(r"Trial (\d+): lease of worker-a expired", read(logs["chief"])).group(1)
        wait_for(lambda: f"Trial {lost} -> worker-b (attempt 2)" in read(logs["chief"]), 30, "the re-run")
        # 2. SIGKILL the chief while worker-b is in a trial; restart it on the same port and directory.
        mark = len(_progress(read(logs["chief"])))
        assert mark < MAX_TRIALS - 2, "the search ended before the chief could be killed in the middle"
        wait_for(lambda: len(_progress(read(logs["chief"]))) > mark, 30, "worker-b's next trial")
        time.sleep(0.3)  # worker-b is 0.3 s into its next trial
        processes["chief"].send_signal(signal.SIGKILL)
        processes["chief"].wait()
        finished_before = set(_progress(read(logs["chief"])))
        processes["chief2"] = start_process(args, logs["chief2"], KERASTUNER_TUNER_ID="chief", **env)
        assert processes["chief2"].wait(240) == 0, read(logs["chief2"])[-3000:]
        assert processes["worker-b"].wait(60) == 0, read(logs["worker-b"])[-3000:]
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    chief2 = read(logs["chief2"])
    assert "was running on worker-b when the chief stopped" in chief2  # its result was kept, not re-run
    assert "late_results_refused 0" in chief2
    project = directory / strategy
    trials = {json.load(open(path))["trial_id"]: json.load(open(path))
              for path in glob.glob(str(project / "trial_*" / "trial.json"))}
    assert sorted(trials) == [f"{i:02d}" for i in range(MAX_TRIALS)]
    assert all(t["status"] == "COMPLETED" for t in trials.values()), {k: t["status"] for k, t in trials.items()}
    assert {k: t["score"] for k, t in trials.items()} == {
        k: pytest.approx(fixed_cost.score_of(t["hyperparameters"]["values"])) for k, t in trials.items()}
    state = read_state(str(project))  # oracle.json + its journal
    assert sorted(state["end_order"]) == sorted(trials)  # each trial ended once: none lost, none twice
    assert state["run_times"][lost] == 2 and sum(state["run_times"].values()) == MAX_TRIALS + 1
    assert finished_before <= set(_progress(read(logs["chief"])) + _progress(chief2))
    if strategy == "ppo":
        ppo = state["ppo_oracle"]["ppo"]
        # Every reward once: each trained child, plus each repeat answered from the reward cache
        # (PPO still sees those samples, on-policy).
        fed = MAX_TRIALS + state["reward_cache"]["num_cache_hits"]
        assert ppo["num_rewards"] == fed and ppo["num_updates"] == fed // 2
        assert state["ppo_oracle"]["pending"] == {}


def test_a_restarted_chief_keeps_running_trials_for_their_worker_random_strategy(tmp_path):
    """Same machinery for any oracle: a random-search chief restarted mid-trial keeps the trial for its worker."""
    first = InProcessChief(tmp_path, strategy="random", max_trials=3, lease_timeout=30)
    worker = first.client("worker-r")
    done = run_one_trial(worker)
    running = worker.create_trial("worker-r")
    first.stop()  # oracle.json as a killed chief leaves it (saved at the last create)
    second = InProcessChief(tmp_path, strategy="random", max_trials=3, lease_timeout=30, port=first.port)
    try:
        assert any(f"Trial {running.trial_id} was running on worker-r" in line for line in second.logs)
        worker.update_trial(running.trial_id, {"val_accuracy": 0.25})
        running.status = "COMPLETED"
        worker.end_trial(running)  # accepted by the new chief: not re-run, not lost
        run_one_trial(worker)
        assert worker.create_trial("worker-r").status == "STOPPED"
        oracle = second.tuner.oracle
        assert sorted(oracle.end_order) == [done.trial_id, running.trial_id, "2"]
        assert all(t.status == "COMPLETED" for t in oracle.trials.values())
    finally:
        second.stop()


def test_failure_messages_reach_the_chief_and_idle_workers_back_off(tmp_path):
    """A failing trial's message lands in the chief's trial.json; a worker waiting on a last trial sleeps."""
    chief = InProcessChief(tmp_path, strategy="random", max_trials=2, lease_timeout=30)
    try:
        a, b = chief.client("worker-a"), chief.client("worker-b")
        trial = a.create_trial("worker-a")
        trial.status, trial.message = "FAILED", "Traceback ...\nValueError: child diverged (loss nan)"
        a.end_trial(trial)
        record = json.load(open(os.path.join(chief.project_dir, f"trial_{trial.trial_id}", "trial.json")))
        assert record["status"] == "FAILED" and record["message"].endswith("child diverged (loss nan)")
        assert any("FAILED (ValueError: child diverged (loss nan))" in line for line in chief.logs)
        last = a.create_trial("worker-a")  # the last trial; worker-b must wait (IDLE), not stop or spin
        calls = []
        original = b._call

        def counting(*args, **kwargs):
            calls.append(1)
            return original(*args, **kwargs)

        b._call = counting
        start = time.monotonic()
        idle = [b.create_trial("worker-b").status for _ in range(4)]
        assert idle == ["IDLE"] * 4 and time.monotonic() - start >= 0.05 + 0.1 + 0.2 + 0.4
        last.status = "COMPLETED"
        a.update_trial(last.trial_id, {"val_accuracy": 0.5})
        a.end_trial(last)
        assert b.create_trial("worker-b").status == "STOPPED"
    finally:
        chief.stop()


def test_a_late_result_of_an_expired_lease_is_refused_and_the_trial_requeued(tmp_path):
    chief = InProcessChief(tmp_path, strategy="random", max_trials=3, lease_timeout=1.0)
    try:
        slow = chief.client("slow")
        trial = slow.create_trial("slow")
        slow._stop_heartbeat()  # it stops reporting
        wait_for(lambda: chief.servicer.counters["lease_expired"] == 1, 20, "the lease to expire")
        other = run_one_trial(chief.client("other"))
        assert other.trial_id == trial.trial_id  # the same trial, handed to the next worker that asked
        trial.status = "COMPLETED"
        slow.end_trial(trial)  # refused: logged by the worker, nothing counted twice
        assert chief.servicer.counters["late_results_refused"] == 1
        assert chief.tuner.oracle.end_order.count(trial.trial_id) == 1
    finally:
        chief.stop()


def test_bad_input_unreachable_chief_port_in_use_second_chief_duplicate_id(tmp_path, monkeypatch, capsys):
    port = free_port()
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    common = ["--directory", str(tmp_path / "d"), "--max-trials", "2", "--insecure"]
    # A worker whose chief never answers gives up after --chief-timeout, naming the address.
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker-x")
    assert fixed_cost.main(common + ["--chief-timeout", "1.5"]) == 1
    assert f"the chief at 127.0.0.1:{port} did not answer Hello" in capsys.readouterr().err
    # A chief on a port in use is refused before it writes anything.
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        assert fixed_cost.main(["--directory", str(tmp_path / "d2")] + common[2:]) == 2
    assert f"cannot serve on 127.0.0.1:{port}" in capsys.readouterr().err
    assert not (tmp_path / "d2").exists()
    # A second chief on a directory that a live chief holds is refused ...
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from tuner.distributed.lock import ChiefLock; "
        f"lock = ChiefLock({str(tmp_path / 'd')!r}, 'ppo').acquire('127.0.0.1:1'); print('held', flush=True); "
        "time.sleep(60)")], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert holder.stdout.readline().strip() == "held"
        assert fixed_cost.main(common) == 2
        assert f"already served by a live chief (pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # ... and the stale lock of a chief that was killed is taken over.
    ChiefLock(str(tmp_path / "d"), "ppo").acquire("127.0.0.1:2").release()
    # Two live processes with one worker id are refused.
    chief = InProcessChief(tmp_path / "dup", strategy="random", max_trials=3, lease_timeout=30)
    try:
        first = chief.client("same-id")
        first.create_trial("same-id")
        with pytest.raises(protocol.ChiefRefusedError, match="'same-id' is in use by another live worker"):
            chief.client("same-id").create_trial("same-id")
    finally:
        chief.stop()
