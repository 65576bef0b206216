"""Distributed search that survives its workers, on keras-tuner's own chief/worker mode.

keras-tuner runs one process per role, chosen by environment variables:
`KERASTUNER_TUNER_ID` (containing "chief" for the chief), `KERASTUNER_ORACLE_IP` and
`KERASTUNER_ORACLE_PORT`. This package keeps that interface and its gRPC service and
replaces the two ends that cannot survive a lost process:

    chief.py      `ChiefServicer` / `serve`: leases, re-queue, an end without every worker,
                  restart that keeps running trials, progress lines, counters
    worker.py     `ChiefClient`: bounded retries, IDLE backoff, heartbeats, failure messages
    lock.py       one chief per search directory
    protocol.py   what the two ends agree on (metadata, side service, settings digest)
    auth.py       the search token and TLS (who may talk to the chief)
    launcher.py   `nasnet search --workers N`: a chief and N workers on one machine
    fixed_cost.py trials that only sleep, for benchmarks and fault tests

Any `keras_tuner.Tuner` uses it through `DistributedConfig.attach(tuner, settings)` (workers) and
`DistributedConfig.serve(tuner, settings)` (chief); `tuner.search.NASTuner` does both.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

from tuner.distributed import protocol


def role() -> str:
    """"chief", "worker" or "single" from keras-tuner's environment variables."""
    from tuner import keras_tuner_internals as kti

    if not kti.has_chief_oracle():
        return "single"
    return "chief" if kti.is_chief_oracle() else "worker"


# TensorFlow threads of the chief's process (intra-op and inter-op pools). The chief's ops
# are the controller's: a 100-unit LSTM on batches of at most 20. Handing ops that small
# to pools of one thread per core costs more CPU than the parallelism saves: one PPO
# update took 277.6 ms of process CPU with TensorFlow's default pools and 169.4 ms with
# pools of one, in about the same wall time (198 vs 170 ms; benchmarks/controller.py
# --threads 0 / 1, 2-core machine).
CHIEF_TF_THREADS = 1


def set_tf_thread_pools(threads: int) -> bool:
    """Give TensorFlow's intra- and inter-op pools `threads` threads each, if it has not started.

    TensorFlow fixes its pools when its runtime starts (the first op or variable); after
    that they stay as they are. Returns True when the pools have that size.
    """
    import tensorflow as tf

    pools = tf.config.threading
    try:
        pools.set_intra_op_parallelism_threads(threads)
        pools.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow has started: its pools are fixed
        pass
    return (pools.get_intra_op_parallelism_threads(), pools.get_inter_op_parallelism_threads()) == (threads, threads)


def use_chief_threads() -> bool:
    """In the chief's process, give TensorFlow's thread pools `CHIEF_TF_THREADS` threads.

    Call it before the process runs its first TensorFlow op (before the oracle and its
    controller exist). Returns True when this process is the chief and its pools have that
    size. Workers and single-process searches keep TensorFlow's defaults, which their
    children's training needs; so does a chief whose process had already started
    TensorFlow (one served from a notebook or a test), which is correct, only slower.
    """
    return role() == "chief" and set_tf_thread_pools(CHIEF_TF_THREADS)


def chief_address() -> tuple[str, int]:
    host = os.environ["KERASTUNER_ORACLE_IP"]
    port = os.environ["KERASTUNER_ORACLE_PORT"]
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 < number < 65536:
        raise ValueError(f"KERASTUNER_ORACLE_PORT must be a port number in 1..65535. "
                         f"Received: KERASTUNER_ORACLE_PORT={port!r}")
    return host, number


@dataclasses.dataclass
class DistributedConfig:
    """How the chief and the workers of one search behave (see chief.py, worker.py).

    lease_timeout: chief: seconds without a call from a trial's worker before the
        trial is taken back (workers heartbeat 4 times per lease).
    chief_timeout: worker: seconds to keep retrying an unanswered chief before exiting.
    auth: `tuner.distributed.auth.Auth` (token, TLS), or None for a plaintext, open chief.
    """

    lease_timeout: float = protocol.DEFAULT_LEASE_TIMEOUT
    chief_timeout: float = protocol.DEFAULT_CHIEF_TIMEOUT
    auth: Any = None

    def __post_init__(self):
        from nasnet_keras.checks import check_number

        check_number("lease_timeout", self.lease_timeout, minimum=0, exclusive_minimum=True)
        check_number("chief_timeout", self.chief_timeout, minimum=0, exclusive_minimum=True)

    def claim(self, directory: str, project_name: str):
        """Chief only, before it writes anything: the port is free and the directory is ours."""
        from tuner.distributed.chief import check_address_free
        from tuner.distributed.lock import ChiefLock

        host, port = chief_address()
        if self.auth is not None:
            self.auth.check_bind(host)
        check_address_free(host, port)
        return ChiefLock(directory, project_name).acquire(f"{host}:{port}")

    def attach(self, tuner, settings: Mapping[str, Any]) -> None:
        """Worker: replace keras-tuner's OracleClient of `tuner` by a `ChiefClient`."""
        from tuner.distributed.worker import ChiefClient

        host, port = chief_address()
        local = getattr(tuner.oracle, "_oracle", tuner.oracle)
        options = self.auth.client_options(wait=self.chief_timeout) if self.auth is not None else {}
        tuner.oracle = ChiefClient(local, settings, host=host, port=port, tuner_id=tuner.tuner_id,
                                   chief_timeout=self.chief_timeout, **options)

    def serve(self, tuner, settings: Mapping[str, Any], log=print):
        """Chief: save the tuner and serve its oracle until the search is over."""
        from tuner.distributed.chief import serve

        host, port = chief_address()
        options = self.auth.server_options(tuner.project_dir, log=log) if self.auth is not None else {}
        # Saved once the servicer has read which trials were running before a restart.
        return serve(tuner.oracle, settings, host=host, port=port, lease_timeout=self.lease_timeout, log=log,
                     on_servicer=lambda servicer: tuner.save(), **options)
