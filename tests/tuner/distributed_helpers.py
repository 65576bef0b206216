"""Shared pieces of the distributed-search tests: ports, an in-process chief, process logs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import types

from tuner.distributed import chief as chief_module
from tuner.distributed.fixed_cost import FixedCostTuner
from tuner.distributed.worker import ChiefClient
from tuner.oracles import make_oracle
from tuner.space import SearchSpace

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPACE = SearchSpace(num_blocks=1)
SETTINGS = {"strategy": "ppo", "search_space": SPACE.to_dict(), "seconds": 0.0, "fail_every": 0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class InProcessChief:
    """A real chief (gRPC server, ChiefServicer, PPO oracle) on a thread of the test process."""

    def __init__(self, directory, *, strategy="ppo", max_trials=6, lease_timeout=5.0, server_options=None,
                 port=None):
        self.port = port or free_port()
        oracle = make_oracle(strategy, SPACE, max_trials=max_trials, seed=1, max_retries_per_trial=1,
                             **({"batch_size": 2} if strategy == "ppo" else {}))
        self.tuner = FixedCostTuner(oracle, seconds=0.0, directory=str(directory), project_name=strategy)
        self.project_dir = self.tuner.project_dir
        self.settings = {**SETTINGS, "strategy": strategy}
        self.logs: list[str] = []
        self.servicer = None
        self.error = None
        ready = threading.Event()

        def on_servicer(servicer):
            self.tuner.save()  # as DistributedConfig.serve: after the servicer read the running trials
            self.servicer = servicer
            ready.set()

        def run():
            try:
                chief_module.serve(oracle, self.settings, host="127.0.0.1", port=self.port,
                                   lease_timeout=lease_timeout, log=self.logs.append, on_servicer=on_servicer,
                                   **(server_options or {}))
            except BaseException as error:  # noqa: BLE001 - reported by the test
                self.error = error
                ready.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(30)
        deadline = time.monotonic() + 30
        while not any("serving the oracle" in line for line in self.logs) and self.error is None:
            assert time.monotonic() < deadline, self.logs
            time.sleep(0.05)

    def client(self, tuner_id="worker-t", settings=None, **options) -> ChiefClient:
        local = types.SimpleNamespace(objective=self.tuner.oracle.objective, max_trials=self.tuner.oracle.max_trials)
        return ChiefClient(local, settings or self.settings, host="127.0.0.1", port=self.port, tuner_id=tuner_id,
                           chief_timeout=options.pop("chief_timeout", 60.0), log=self.logs.append, **options)

    def stop(self):
        if self.servicer is not None:
            self.servicer.request_stop()
        self.thread.join(30)


def snapshot(directory) -> dict[str, bytes]:
    """Every file under `directory` with its bytes (to show that nothing changed)."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = f.read()
    return files


def run_one_trial(client, score=0.5):
    """What a worker does for one trial, through `client` (create, report, end)."""
    trial = client.create_trial(client.tuner_id)
    client.update_trial(trial.trial_id, {"val_accuracy": score}, step=0)
    trial.status = "COMPLETED"
    client.end_trial(trial)
    return trial


def python_env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO, "PYTHONUNBUFFERED": "1", **extra}


def start_process(args, log_path, **env) -> subprocess.Popen:
    out = open(log_path, "w", encoding="utf-8")
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env=python_env(**env), stdout=out,
                            stderr=subprocess.STDOUT)


def read(path) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
