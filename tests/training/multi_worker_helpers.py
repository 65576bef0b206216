"""Real multi-worker jobs on localhost for the tests: free ports, TF_CONFIG, worker processes.

Each worker is a `nasnet train` process of its own (TensorFlow configures collectives once
per process), on the CPU, listening on a loopback port chosen by the kernel.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from nasnet_keras import Genotype

# A found-by-search style cell with two blocks (cheaper to trace than NASNet-A's five).
FOUND = Genotype.from_blocks(
    normal=[(0, 1, "sep_conv_3x3", "identity"), (0, 1, "avg_pool_3x3", "sep_conv_3x3")],
    reduction=[(0, 1, "sep_conv_3x3", "max_pool_3x3"), (0, 1, "avg_pool_3x3", "sep_conv_5x5")],
    name="found",
)

# Settings under which training is deterministic, so that runs can be compared to 1e-5:
# no random augmentation (pad-crop, flips, cutout: stateful random ops inside parallel
# tf.data maps draw in a nondeterministic order), no drop path, no dropout, and BatchNorm
# statistics over the global batch (--sync-batch-norm) so that 2 replicas of 8 images
# normalise like 1 device with 16. The data order is the seeded shuffle (same seed).
# The recipe's gradient clipping (clip_global_norm=5) stays on: it is active on most of
# the 8 steps, and keras_distribute_fixes clips the all-reduced gradient as one device does.
DETERMINISTIC = [
    "--set", "cutout_size=0", "--set", "pad=0", "--set", "flip=false", "--set", "drop_path_keep_prob=1.0",
    "--set", "dropout=0", "--sync-batch-norm",
]


def train_command(directory: str, genotype_file: str, *extra: str, epochs: int = 1, examples: int = 128) -> list[str]:
    """`nasnet train` of a tiny NASNet (N = 1, 4 filters, 8x8 inputs) on a Fashion-MNIST slice, global batch 16."""
    return [
        "train", "--model", genotype_file, "--base-variant", "cifar_6@768", "--dataset", "fashion_mnist",
        "--directory", directory, "--num-blocks", "1", "--filters", "4", "--image-size", "8",
        "--set", f"epochs={epochs}", "--set", f"train_split=train[:{examples}]", "--set", "eval_split=test[:32]",
        "--set", "batch_size=16", "--set", "base_learning_rate=0.05", "--set", "aux_loss_weight=0",
        *DETERMINISTIC, "--no-tensorboard", "--verbose", "2", *extra,
    ]


def free_ports(count: int) -> list[int]:
    """Ports the kernel reports free on the loopback interface (all held at once, then released)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


class Worker:
    """One `nasnet train` worker process; its output goes to a log file."""

    def __init__(self, arguments: list[str], ports: list[int], index: int, log_path: str):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=tf_config(ports, index), CUDA_VISIBLE_DEVICES="")
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "nasnet_keras.cli", *arguments], env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT, text=True)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path) as f:
            return f.read()

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"worker did not exit within {timeout} s:\n{self.output()[-3000:]}")
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def summary(self) -> dict:
        out = self.output()
        assert "{\n" in out, f"no summary in the worker's output:\n{out[-3000:]}"
        return json.JSONDecoder().raw_decode(out[out.rindex("{\n"):])[0]


def start_job(arguments: list[str], ports: list[int], logs_dir: str, tag: str) -> list[Worker]:
    return [Worker(arguments, ports, i, os.path.join(logs_dir, f"{tag}-worker{i}.log")) for i in range(len(ports))]


def finish_job(workers: list[Worker], timeout: float = 600) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    try:
        for worker in workers:
            codes.append(worker.wait(max(1.0, deadline - time.monotonic())))
    finally:
        for worker in workers:
            worker.kill()
    return codes
