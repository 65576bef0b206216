"""The worker's side: keras-tuner's `OracleClient` with bounded retries, backoff and heartbeats.

keras-tuner's client waits up to an hour on every call (`wait_for_ready`, 60 min) and
then fails with a bare gRPC error, asks again at once when told IDLE (a busy loop), and
sends trials through a proto that drops their failure message. `ChiefClient` is a
drop-in replacement (a subclass, so `BaseTuner` treats it as its oracle) that:

* says Hello first, so the chief can refuse a worker of another search by name;
* retries a call the chief does not answer (UNAVAILABLE, DEADLINE_EXCEEDED) with
  exponential backoff for at most `chief_timeout` seconds, then raises
  `ChiefUnavailableError` naming the address and gRPC's own reason (connection refused,
  TLS handshake; `wait_for_ready` calls only say DEADLINE_EXCEEDED, so one fail-fast call
  asks), with a hint at the TLS flags when the port answers but the connection fails (a
  keras-tuner `FatalError`, so the trial loop does not swallow it); a refusal (other
  settings, expired lease, bad token) is not retried;
* sleeps with backoff (50 ms doubling to 2 s) between IDLE answers;
* heartbeats every `heartbeat_interval` (from the chief's Hello answer) on a background
  thread while a trial runs: the lease says "this process is alive", so a child whose
  epochs take an hour is not mistaken for a dead worker;
* sends the trial's failure message as EndTrial metadata (`protocol.MESSAGE_KEY`).
"""

from __future__ import annotations

import os
import random
import socket
import sys
import threading
import time
import uuid
from typing import Any, Callable, Mapping

import grpc
from keras_tuner.engine import trial as trial_module

from tuner import keras_tuner_internals as kti
from tuner.distributed import protocol

TrialStatus = trial_module.TrialStatus
RETRIED_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
IDLE_BACKOFF = (0.05, 2.0)  # first and largest sleep after an IDLE answer
RETRY_BACKOFF = (0.2, 5.0)  # first and largest sleep between attempts at an unanswered call
CALL_TIMEOUT = 30.0
PROBE_METHOD = f"/{protocol.SIDE_SERVICE}/ConnectionProbe"  # not served: finds why a channel cannot connect
PROBE_TIMEOUT = 2.0
UNREACHABLE_MARKS = ("Connection refused", "errors resolving", "No route to host", "Network is unreachable")


def connection_hint(transport_error: str | None, *, tls: bool, address: str) -> str:
    """What to check when the chief's port is reachable but the connection fails (mostly TLS settings)."""
    if transport_error is None or any(mark in transport_error for mark in UNREACHABLE_MARKS):
        return ""  # nothing listens there, or the name does not resolve: the address is the question
    if not tls:
        return (" The chief closed a plaintext connection: if the chief serves TLS, pass --tls-ca (the CA certificate "
                "that signed the chief's certificate; with mutual TLS also --tls-cert/--tls-key) to this worker; "
                "see docs/distributed_search.md, 'TLS files for a cluster'.")
    return (" The TLS connection failed: --tls-ca must be the CA that signed the chief's certificate, that "
            f"certificate must name the address used ({address}), and a chief started with --tls-ca (mutual TLS) "
            "also needs this worker's --tls-cert/--tls-key.")


def generate_tuner_id(prefix: str = "worker") -> str:
    """A worker id unique across machines and restarts: prefix, host, pid, random suffix."""
    host = socket.gethostname().split(".")[0] or "host"
    return f"{prefix}-{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class ChiefClient(kti.OracleClient):
    """A worker's view of the chief's oracle (see the module docstring).

    Args:
        oracle: the worker's local oracle (keras-tuner reads `objective`, `max_trials`
            from it).
        settings: this worker's search settings (must equal the chief's).
        host, port: the chief's address (KERASTUNER_ORACLE_IP / _PORT).
        tuner_id: this worker's id (KERASTUNER_TUNER_ID).
        chief_timeout: seconds to keep retrying an unanswered call before giving up.
        channel_credentials, interceptors, channel_options: how to reach the chief
            (TLS, the search token: `tuner.distributed.auth`).
        log: where warnings go (stderr by default).
    """

    def __init__(self, oracle, settings: Mapping[str, Any], *, host: str, port: int | str, tuner_id: str,
                 chief_timeout: float = protocol.DEFAULT_CHIEF_TIMEOUT,
                 channel_credentials: grpc.ChannelCredentials | None = None, interceptors=(),
                 channel_options=(), log: Callable[[str], None] | None = None, hello: bool = True):
        # Not super().__init__: it opens an insecure channel from the environment.
        self._oracle = oracle
        self.address = f"{host}:{port}"
        self.tuner_id = tuner_id
        self.multi_worker = False
        self.should_report = True
        self.chief_timeout = float(chief_timeout)
        self.log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self.settings = dict(settings)
        self.session = uuid.uuid4().hex
        self.metadata = ((protocol.TUNER_ID_KEY, tuner_id), (protocol.SESSION_KEY, self.session),
                         (protocol.SETTINGS_KEY, protocol.settings_digest(self.settings)))
        self.tls = channel_credentials is not None
        if channel_credentials is not None:
            channel = grpc.secure_channel(self.address, channel_credentials, options=list(channel_options))
        else:
            channel = grpc.insecure_channel(self.address, options=list(channel_options))
        if interceptors:
            channel = grpc.intercept_channel(channel, *interceptors)
        self.channel = channel
        self.stub = kti.service_grpc.OracleStub(channel)
        self._side = {name: channel.unary_unary(path, request_serializer=protocol.encode,
                                                response_deserializer=protocol.decode)
                      for name, path in (("Hello", protocol.HELLO), ("Heartbeat", protocol.HEARTBEAT),
                                         ("Stats", protocol.STATS))}
        self.heartbeat_interval = protocol.DEFAULT_LEASE_TIMEOUT / 4
        self._idle_sleep = IDLE_BACKOFF[0]
        self._heartbeat_stop: threading.Event | None = None
        if hello:
            self.hello()

    # --- calls with bounded retries ------------------------------------------------------
    def _call(self, method: Callable, request, *, what: str, metadata=(), retry: bool = True):
        start = time.monotonic()
        sleep = RETRY_BACKOFF[0]
        warned = False
        while True:
            remaining = self.chief_timeout - (time.monotonic() - start)
            try:
                return method(request, metadata=self.metadata + tuple(metadata),
                              timeout=max(0.1, min(CALL_TIMEOUT, remaining)), wait_for_ready=True)
            except grpc.RpcError as error:
                code = error.code() if hasattr(error, "code") else None
                if code == grpc.StatusCode.FAILED_PRECONDITION and protocol.LEASE_LOST in (error.details() or ""):
                    raise protocol.LeaseLostError(f"worker {self.tuner_id}: {error.details()}") from None
                if code not in RETRIED_CODES:
                    raise protocol.ChiefRefusedError(
                        f"worker {self.tuner_id}: the chief at {self.address} refused {what}: "
                        f"{code.name if code else 'error'}: {error.details() if hasattr(error, 'details') else error}"
                    ) from None
                if not retry or time.monotonic() - start + sleep >= self.chief_timeout:
                    waited = time.monotonic() - start
                    transport = self._transport_error()
                    last = f"UNAVAILABLE: {transport}" if transport else f"{code.name}: {error.details()}"
                    raise protocol.ChiefUnavailableError(
                        f"worker {self.tuner_id}: the chief at {self.address} did not answer {what} for "
                        f"{waited:.0f} s (chief timeout {self.chief_timeout:g} s; is the chief "
                        f"running and the address right?). Last error: {last}."
                        f"{connection_hint(transport, tls=self.tls, address=self.address)}"
                    ) from None
                if not warned:
                    self.log(f"worker {self.tuner_id}: the chief at {self.address} does not answer ({code.name}); "
                             f"retrying for up to {self.chief_timeout:g} s")
                    warned = True
                time.sleep(sleep * random.uniform(0.8, 1.2))
                sleep = min(RETRY_BACKOFF[1], sleep * 2)

    def _transport_error(self) -> str | None:
        """Why the channel cannot connect (refused, TLS handshake...), or None if it can.

        The calls wait for the channel (`wait_for_ready`), so all they report is
        DEADLINE_EXCEEDED; one call that fails fast gets gRPC's own reason. It asks for a
        method the chief does not have: it never reaches the chief's servicer.
        """
        probe = self.channel.unary_unary(PROBE_METHOD)
        try:
            probe(b"", metadata=self.metadata, timeout=PROBE_TIMEOUT, wait_for_ready=False)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                return error.details()
        return None

    def hello(self) -> dict:
        answer = self._call(self._side["Hello"], {"tuner_id": self.tuner_id, "session": self.session,
                                                  "settings": self.settings, "host": socket.gethostname(),
                                                  "pid": os.getpid()}, what="Hello")
        self.heartbeat_interval = float(answer["heartbeat_interval"])
        return answer

    def stats(self, times: bool = False) -> dict:
        return self._call(self._side["Stats"], {"times": times}, what="Stats")

    # --- keras-tuner's client API --------------------------------------------------------
    def get_space(self):
        response = self._call(self.stub.GetSpace, kti.service_messages.GetSpaceRequest(), what="GetSpace")
        from keras_tuner.engine import hyperparameters as hp_module

        return hp_module.HyperParameters.from_proto(response.hyperparameters)

    def update_space(self, hyperparameters):
        self._call(self.stub.UpdateSpace, kti.service_messages.UpdateSpaceRequest(
            hyperparameters=hyperparameters.to_proto()), what="UpdateSpace")

    def create_trial(self, tuner_id):
        response = self._call(self.stub.CreateTrial, kti.service_messages.CreateTrialRequest(tuner_id=tuner_id),
                              what="CreateTrial")
        trial = trial_module.Trial.from_proto(response.trial)
        if trial.status == TrialStatus.IDLE:
            time.sleep(self._idle_sleep)  # nothing to hand out now: don't ask again at once
            self._idle_sleep = min(IDLE_BACKOFF[1], self._idle_sleep * 2)
        else:
            self._idle_sleep = IDLE_BACKOFF[0]
        if trial.status == TrialStatus.RUNNING:
            self._start_heartbeat(trial.trial_id)
        return trial

    def update_trial(self, trial_id, metrics, step=0):
        response = self._call(self.stub.UpdateTrial, kti.service_messages.UpdateTrialRequest(
            trial_id=trial_id, metrics=metrics, step=step), what=f"UpdateTrial({trial_id})")
        return trial_module.Trial.from_proto(response.trial)

    def end_trial(self, trial):
        metadata = ()
        if trial.message:
            data = str(trial.message).encode("utf-8")[-protocol.MAX_MESSAGE_BYTES:]
            metadata = ((protocol.MESSAGE_KEY, data),)
        try:
            self._call(self.stub.EndTrial, kti.service_messages.EndTrialRequest(trial=trial.to_proto()),
                       what=f"EndTrial({trial.trial_id})", metadata=metadata)
        except protocol.LeaseLostError as error:
            self.log(f"{error}")  # the chief gave the trial to another worker: go on with the next one
        finally:
            self._stop_heartbeat()

    def get_trial(self, trial_id):
        response = self._call(self.stub.GetTrial, kti.service_messages.GetTrialRequest(trial_id=trial_id),
                              what=f"GetTrial({trial_id})")
        return trial_module.Trial.from_proto(response.trial)

    def get_best_trials(self, num_trials=1):
        response = self._call(self.stub.GetBestTrials, kti.service_messages.GetBestTrialsRequest(
            num_trials=num_trials), what="GetBestTrials")
        return [trial_module.Trial.from_proto(t) for t in response.trials]

    # --- heartbeats ----------------------------------------------------------------------
    def _start_heartbeat(self, trial_id: str) -> None:
        self._stop_heartbeat()
        stop = threading.Event()
        self._heartbeat_stop = stop

        def beat():
            while not stop.wait(self.heartbeat_interval):
                try:
                    self._side["Heartbeat"]({"trial_id": trial_id}, metadata=self.metadata,
                                            timeout=max(1.0, self.heartbeat_interval))
                except grpc.RpcError:
                    pass  # the chief is away: the trial's own calls retry and report it

        threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True).start()

    def _stop_heartbeat(self) -> None:
        if self._heartbeat_stop is not None:
            self._heartbeat_stop.set()
            self._heartbeat_stop = None

    def close(self) -> None:
        self._stop_heartbeat()
        self.channel.close()
