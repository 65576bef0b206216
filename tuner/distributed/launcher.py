"""`nasnet search ... --workers N`: a chief and N workers on this machine, supervised.

The launcher runs the same `nasnet search` command N + 1 times under keras-tuner's
environment variables (the chief as `KERASTUNER_TUNER_ID=chief`, bound to 127.0.0.1; each
worker with a generated unique id), streams the chief's lines (one per finished trial:
trial, worker, score, best so far, trials/hour, ETA) and returns the chief's exit code
when the search is done. Workers' output goes to `<directory>/logs/<id>.log`.

Devices: with GPUs (`nvidia-smi -L`, or the devices listed in `CUDA_VISIBLE_DEVICES`),
worker i sees only GPU i mod #GPUs (`CUDA_VISIBLE_DEVICES`), and the chief none (it trains
nothing). Without GPUs the workers share the CPU: each gets `cores // N` (at least 1)
TensorFlow intra-op threads and 2 inter-op threads (`TF_NUM_INTRAOP_THREADS`,
`TF_NUM_INTEROP_THREADS`, `OMP_NUM_THREADS`), so N workers do not oversubscribe the cores.

Supervision: a worker that dies (non-zero exit) is replaced by a new one with a new id
(its trial comes back to the queue when its lease expires); a chief killed by a signal is
restarted on the same port (it resumes from its directory and the workers reconnect),
up to `MAX_RESTARTS` times each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from tuner.distributed.worker import generate_tuner_id

MAX_RESTARTS = 3
READY_MARK = "serving the oracle on"
ENV_KEYS = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def child_argv(parser: argparse.ArgumentParser, args: argparse.Namespace, drop=("workers", "port")) -> list[str]:
    """The command-line arguments that reproduce `args` (those that differ from their defaults)."""
    argv: list[str] = []
    for action in parser._actions:  # argparse keeps its actions here; stable since Python 2.7
        if not action.option_strings or action.dest in drop or action.dest == "help":
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default:
            continue
        flag = max(action.option_strings, key=len)
        if isinstance(action, argparse._StoreTrueAction):
            argv.append(flag)
        elif isinstance(action, argparse._AppendAction):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv


def gpu_ids() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def device_env(index: int, num_workers: int, gpus: list[str]) -> dict[str, str]:
    if gpus:
        return {"CUDA_VISIBLE_DEVICES": gpus[index % len(gpus)]}
    threads = str(max(1, (os.cpu_count() or 1) // num_workers))
    return {"CUDA_VISIBLE_DEVICES": "", "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "2",
            "OMP_NUM_THREADS": threads}


class Launcher:
    def __init__(self, command: list[str], num_workers: int, directory: str, *, port: int | None = None,
                 overwrite: bool = False, log=print, python: str = sys.executable):
        self.command = [python, "-m", "nasnet_keras.cli", "search", *command]
        self.overwrite = overwrite  # the first chief only: a restarted chief resumes, workers never delete
        self.num_workers = num_workers
        self.port = port or free_port()
        self.logs = os.path.join(directory, "logs")
        self.log = log
        base = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
        self.base_env = {**base, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(self.port),
                         "PYTHONUNBUFFERED": "1"}
        self.gpus = gpu_ids()
        self.chief: subprocess.Popen | None = None
        self.workers: dict[int, tuple[str, subprocess.Popen]] = {}
        self.ready = threading.Event()

    def _start_chief(self) -> None:
        self.ready.clear()
        env = {**self.base_env, "KERASTUNER_TUNER_ID": "chief", "CUDA_VISIBLE_DEVICES": ""}
        command = self.command + (["--overwrite"] if self.overwrite else [])
        self.overwrite = False
        self.chief = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, bufsize=1)
        chief = self.chief

        def stream():
            for line in chief.stdout:
                if READY_MARK in line:
                    self.ready.set()
                self.log(line.rstrip("\n"))

        threading.Thread(target=stream, daemon=True).start()

    def _start_worker(self, index: int) -> None:
        tuner_id = generate_tuner_id(f"worker{index}")
        os.makedirs(self.logs, exist_ok=True)
        path = os.path.join(self.logs, f"{tuner_id}.log")
        env = {**self.base_env, "KERASTUNER_TUNER_ID": tuner_id, **device_env(index, self.num_workers, self.gpus)}
        with open(path, "a", encoding="utf-8") as out:
            process = subprocess.Popen(self.command, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.workers[index] = (tuner_id, process)
        device = f"GPU {env['CUDA_VISIBLE_DEVICES']}" if self.gpus else f"{env['TF_NUM_INTRAOP_THREADS']} CPU threads"
        self.log(f"nasnet search: worker {tuner_id} started (pid {process.pid}, {device}); log {path}")

    def _wait_ready(self) -> int | None:
        while not self.ready.wait(0.2):
            code = self.chief.poll()
            if code is not None:
                return code
        return None

    def run(self) -> int:
        self.log(f"nasnet search: chief on 127.0.0.1:{self.port}, {self.num_workers} worker(s)")
        self._start_chief()
        try:
            code = self._wait_ready()
            if code is not None:
                return code
            for index in range(self.num_workers):
                self._start_worker(index)
            return self._supervise()
        finally:
            self._stop_all()

    def _supervise(self) -> int:
        chief_restarts = worker_restarts = 0
        done: set[int] = set()
        while True:
            time.sleep(0.5)
            code = self.chief.poll()
            if code is not None:
                if code == 0:
                    self._wait_workers(30.0)
                    return 0
                if code < 0 and chief_restarts < MAX_RESTARTS:
                    chief_restarts += 1
                    self.log(f"nasnet search: the chief died ({signal.Signals(-code).name}); restarting it "
                             f"({chief_restarts}/{MAX_RESTARTS}); workers reconnect")
                    self._start_chief()
                    code = self._wait_ready()
                    if code is not None:
                        return code
                    continue
                self.log(f"nasnet search: the chief exited with code {code}")
                return code
            for index, (tuner_id, process) in list(self.workers.items()):
                status = process.poll()
                if status is None or index in done:
                    continue
                if status == 0:
                    done.add(index)
                elif worker_restarts < MAX_RESTARTS * self.num_workers:
                    worker_restarts += 1
                    self.log(f"nasnet search: worker {tuner_id} exited with code {status}; starting a new one")
                    self._start_worker(index)
                else:
                    done.add(index)
                    self.log(f"nasnet search: worker {tuner_id} exited with code {status}; no restarts left")

    def _wait_workers(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for _, process in self.workers.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass

    def _stop_all(self) -> None:
        processes = [p for _, p in self.workers.values()] + ([self.chief] if self.chief else [])
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def launch(args) -> int:
    """The `--workers N` path of `nasnet search`."""
    from nasnet_keras.checks import check_int

    check_int("--workers", args.workers, minimum=1)
    if args.port is not None:
        check_int("--port", args.port, minimum=1, maximum=65535)
    if any(k in os.environ for k in ENV_KEYS):
        raise ValueError("--workers starts its own chief and workers; unset "
                         f"{', '.join(k for k in ENV_KEYS if k in os.environ)} (or drop --workers)")
    command = child_argv(args.search_parser, args, drop=("workers", "port", "overwrite"))
    launcher = Launcher(command, args.workers, args.directory, port=args.port, overwrite=args.overwrite,
                        log=lambda line: print(line, flush=True))
    return launcher.run()
