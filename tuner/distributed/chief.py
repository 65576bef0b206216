"""The chief: keras-tuner's `OracleServicer` made to survive its workers.

keras-tuner's own chief (`oracle_chief.start_server`) serves the oracle on one thread and
exits only when every worker that ever asked for a trial has been told STOPPED and no
trial is ongoing, so one dead worker keeps it waiting forever (keras-tuner #645). This
chief serves the same gRPC service through a subclass of the same servicer, for any
`keras_tuner.Oracle` (PPO, random, or any future one: nothing here knows the strategy),
and adds:

* Leases. A trial handed to a worker is leased to it; every call of that worker
  (heartbeats while it trains, any oracle call) renews the lease. A lease not renewed
  for `lease_timeout` seconds expires: the trial is ended INVALID through the oracle's
  own `end_trial`, with a message naming the worker, so keras-tuner's retry rule
  applies unchanged: it goes back to the queue for any worker with the same values (and,
  for PPO, the same recorded log-probability, which `PPOOracle` keeps for INVALID trials)
  or, after `max_retries_per_trial` retries, it is FAILED. A late result of an expired
  lease is refused, so no trial is counted twice.
* An end that does not need every worker: the search is done when the oracle has
  stopped (or all `max_trials` trials exist) and no trial is ongoing or queued. Live
  workers asking meanwhile get STOPPED; workers still waiting for a re-queued trial get
  IDLE (they back off, see `worker.py`), not STOPPED, so a trial re-queued at the very end
  still finds a worker.
* A restart that loses nothing: keras-tuner's reload re-queues every trial that was
  ongoing when the chief died. The chief gives each back to its worker for one lease, so
  a worker that reconnects with its result is not made to repeat it; if it does not come
  back, the lease expires as above.
* Failure messages: keras-tuner's Trial proto has no message field, so workers send
  it as metadata on EndTrial (`protocol.MESSAGE_KEY`) and it lands in the trial record.
* One progress line per finished trial (trial, worker, score, best so far, trials/hour,
  ETA), and per-call overhead counters (`Stats`).
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from concurrent import futures
from typing import Any, Callable, Mapping

import grpc
from keras_tuner.engine import trial as trial_module

from tuner import keras_tuner_internals as kti
from tuner.distributed import protocol
from tuner.distributed.trial_protos import TrialProtos
from tuner.state_journal import read_state

TrialStatus = trial_module.TrialStatus

# How long a finished chief keeps answering STOPPED so that live workers exit cleanly.
LINGER_SECONDS = 10.0
SERVER_THREADS = 16


class CallTimes:
    """Wall and process-CPU seconds of each timed call.

    The CPU time counts the whole chief process (TensorFlow's PPO update runs on its own
    thread pool): what the chief itself spends, which, unlike the wall time, does not
    count the time other processes hold the CPU.
    """

    def __init__(self):
        self.wall: list[float] = []
        self.cpu: list[float] = []

    @staticmethod
    def start() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def stop(self, started: tuple[float, float]) -> None:
        self.wall.append(time.perf_counter() - started[0])
        self.cpu.append(time.process_time() - started[1])


def _percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ChiefServicer(kti.OracleServicer):
    """keras-tuner's servicer with leases, settings checks, failure messages and progress.

    Args:
        oracle: any `keras_tuner.Oracle` (already reloaded when resuming).
        settings: the search settings that workers must share (see `protocol`).
        lease_timeout: seconds without a call from a trial's worker before the trial is
            taken back.
        log: where progress lines go.
    """

    def __init__(self, oracle, settings: Mapping[str, Any], *, lease_timeout: float = protocol.DEFAULT_LEASE_TIMEOUT,
                 log: Callable[[str], None] = print, clock: Callable[[], float] = time.monotonic):
        super().__init__(oracle)
        # The chief prints its own progress lines; keras-tuner's display keeps per-trial start
        # times in memory and fails on a trial it did not see start (one kept across a restart).
        oracle.verbose = 0
        self.settings = dict(settings)
        self.digest = protocol.settings_digest(self.settings)
        self.lease_timeout = float(lease_timeout)
        self.heartbeat_interval = self.lease_timeout / 4
        self.log = log
        self.clock = clock
        self._lock = threading.RLock()  # the oracle and this servicer's trial bookkeeping
        self._seen_lock = threading.Lock()  # liveness only: never waits for a slow oracle call
        self._last_reap = clock()
        self.last_seen: dict[str, float] = {}
        self.sessions: dict[str, str] = {}
        self.peers: dict[str, str] = {}
        self.told_stop: set[str] = set()
        self.stop_seen = False
        self.finished_at: float | None = None
        self.fatal: str | None = None
        self.stop_requested = False
        self.started = clock()
        self.first_start: float | None = None
        self.last_end: float | None = None
        # Whole-process CPU seconds (all threads: gRPC's own, TLS, the interceptors, the PPO
        # update) at the first trial's creation and the last trial's end: what serving costs
        # beyond the servicer's own code, which `create_times`/`end_times` measure.
        self.first_start_cpu: float | None = None
        self.last_end_cpu: float | None = None
        self.interceptors: list = []  # server interceptors that report their own time (`overhead()`)
        self.finished_here = 0
        self.best: float | None = None
        self.counters = {"created": 0, "completed": 0, "failed": 0, "invalid": 0, "lease_expired": 0,
                         "late_results_refused": 0, "refused_settings": 0, "refused_duplicate_id": 0,
                         "unauthenticated": 0}
        self.create_times, self.end_times = CallTimes(), CallTimes()
        self.protos = TrialProtos()
        self._restore_ongoing()

    # --- who is calling ------------------------------------------------------------------
    def _caller(self, context, *, check_settings: bool = True) -> str:
        """The calling worker's id, after its identity (and settings) are checked; renews its lease."""
        tuner_id, session = self._identity(context)
        if check_settings and protocol.metadata_value(context, protocol.SETTINGS_KEY) != self.digest:
            self.counters["refused_settings"] += 1
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"worker {tuner_id} belongs to another search (settings digest "
                          f"{protocol.metadata_value(context, protocol.SETTINGS_KEY)!r}, this chief's is "
                          f"{self.digest!r}); start it with this search's settings")
        self._record(context, tuner_id, session)
        return tuner_id

    @staticmethod
    def _identity(context) -> tuple[str, str]:
        tuner_id = protocol.metadata_value(context, protocol.TUNER_ID_KEY)
        session = protocol.metadata_value(context, protocol.SESSION_KEY)
        if not tuner_id or not session:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          "this chief serves nasnet search workers only (tuner.distributed.worker.ChiefClient): "
                          f"the call carries no {protocol.TUNER_ID_KEY!r}/{protocol.SESSION_KEY!r} metadata")
        return tuner_id, session

    def _record(self, context, tuner_id: str, session: str) -> None:
        """Note a worker's session, address and last call: only once every check let it in."""
        with self._seen_lock:
            now = self.clock()
            known = self.sessions.get(tuner_id)
            if known is not None and known != session and now - self.last_seen.get(tuner_id, -math.inf) \
                    < 2 * self.heartbeat_interval and tuner_id in self.oracle.ongoing_trials:
                self.counters["refused_duplicate_id"] += 1
                context.abort(grpc.StatusCode.ALREADY_EXISTS,
                              f"worker id {tuner_id!r} is in use by another live worker "
                              f"({self.peers.get(tuner_id)}); give each worker its own KERASTUNER_TUNER_ID "
                              "(or leave it unset to have one generated)")
            self.sessions[tuner_id] = session
            self.peers[tuner_id] = context.peer()
            self.last_seen[tuner_id] = now

    def _holder(self, trial_id: str) -> str | None:
        for tuner_id, trial in self.oracle.ongoing_trials.items():
            if trial.trial_id == trial_id:
                return tuner_id
        return None

    def _check_lease(self, context, tuner_id: str, trial_id: str) -> None:
        holder = self._holder(trial_id)
        if holder != tuner_id:
            self.counters["late_results_refused"] += 1
            why = "it is not running" if holder is None else f"it now runs on {holder}"
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"trial {trial_id} {protocol.LEASE_LOST} {tuner_id} ({why}: the lease expired after "
                          f"{self.lease_timeout:g} s without a call); this result is discarded")

    # --- keras-tuner's RPCs --------------------------------------------------------------
    def CreateTrial(self, request, context):
        tuner_id = self._caller(context)
        with self._lock:
            started = self.create_times.start()  # the chief's own cost, not the wait for other workers' calls
            if self.finished_at is not None or self.fatal is not None:
                self.told_stop.add(tuner_id)
                trial = trial_module.Trial(self.oracle.get_space(), status=TrialStatus.STOPPED)
                return kti.service_messages.CreateTrialResponse(trial=trial.to_proto())
            trial = self.oracle.create_trial(request.tuner_id or tuner_id)
            if trial.status == TrialStatus.STOPPED:
                self.stop_seen = True
                if self.oracle.ongoing_trials:  # one may yet expire and need a worker
                    trial = trial_module.Trial(self.oracle.get_space(), status=TrialStatus.IDLE)
                else:
                    self.told_stop.add(tuner_id)
            elif trial.status == TrialStatus.RUNNING:
                self.counters["created"] += 1
                if self.first_start is None:
                    self.first_start, self.first_start_cpu = self.clock(), started[1]
                attempt = kti.run_count(self.oracle, trial.trial_id) + 1
                if attempt > 1:
                    self.log(f"Trial {trial.trial_id} -> {tuner_id} (attempt {attempt})")
            response = kti.service_messages.CreateTrialResponse(trial=self.protos.to_proto(trial))
            if trial.status == TrialStatus.RUNNING:
                self.create_times.stop(started)
        return response

    def UpdateTrial(self, request, context):
        tuner_id = self._caller(context)
        with self._lock:
            self._check_lease(context, tuner_id, request.trial_id)
            # keras-tuner's servicer, with the trial's hyperparameters encoded once (`TrialProtos`)
            trial = self.oracle.update_trial(request.trial_id, request.metrics, step=request.step)
            return kti.service_messages.UpdateTrialResponse(trial=self.protos.to_proto(trial))

    def EndTrial(self, request, context):
        tuner_id = self._caller(context)
        message = protocol.metadata_value(context, protocol.MESSAGE_KEY)
        with self._lock:
            started = self.end_times.start()
            self._check_lease(context, tuner_id, request.trial.trial_id)
            trial = self.protos.from_proto(request.trial, self.oracle.trials.get(request.trial.trial_id))
            if message:
                trial.message = bytes(message).decode("utf-8", "replace")
            self._end(trial, tuner_id)
            if self.fatal is not None:
                context.abort(grpc.StatusCode.ABORTED, f"the search stopped: {self.fatal}")
            self.end_times.stop(started)
        self.last_end, self.last_end_cpu = self.clock(), time.process_time()
        return kti.service_messages.EndTrialResponse()

    def GetTrial(self, request, context):
        self._caller(context)
        return super().GetTrial(request, context)

    def GetBestTrials(self, request, context):
        self._caller(context)
        with self._lock:
            return super().GetBestTrials(request, context)

    def GetSpace(self, request, context):
        self._caller(context)
        return super().GetSpace(request, context)

    def UpdateSpace(self, request, context):
        self._caller(context)
        with self._lock:
            return super().UpdateSpace(request, context)

    # --- ending trials (by their worker, or by an expired lease) -------------------------
    def _end(self, trial, tuner_id: str) -> None:
        self.protos.forget(trial.trial_id)  # its answers are over (a re-queued trial is encoded anew)
        try:
            self.oracle.end_trial(trial)
        except RuntimeError as error:  # keras-tuner: too many consecutive failures
            self.fatal = str(error).splitlines()[0]
            self.log(f"nasnet search chief: stopping: {self.fatal}")
            return
        record = self.oracle.trials[trial.trial_id]
        status = str(record.status)
        if status == TrialStatus.INVALID:
            self.counters["invalid"] += 1
            retries = self.oracle.max_retries_per_trial + 1 - kti.run_count(self.oracle, trial.trial_id)
            self.log(f"Trial {trial.trial_id} on {tuner_id} | INVALID, re-queued ({retries} "
                     f"retr{'y' if retries == 1 else 'ies'} left) | {self._reason(record)}")
            return
        self.finished_here += 1
        parts = [f"Trial {trial.trial_id}" + (f"/{self.oracle.max_trials}" if self.oracle.max_trials else ""),
                 f"worker {tuner_id}"]
        if status == TrialStatus.COMPLETED and record.score is not None and math.isfinite(record.score):
            self.counters["completed"] += 1
            better = (self.best is None or (record.score > self.best if self.oracle.objective.direction == "max"
                                            else record.score < self.best))
            self.best = record.score if better else self.best
            parts.append(f"{self.oracle.objective.name} {record.score:.4f}")
        else:
            self.counters["failed"] += 1
            parts.append(f"{status} ({self._reason(record)})")
        parts.append(f"best {self.best:.4f}" if self.best is not None else "best -")
        elapsed = self.clock() - (self.first_start or self.started)
        rate = self.finished_here / elapsed * 3600 if elapsed > 0 else float("nan")
        parts.append(f"{rate:.1f} trials/h")
        if self.oracle.max_trials:
            remaining = max(0, self.oracle.max_trials - len(self.oracle.end_order))
            parts.append(f"ETA {_hms(remaining / rate * 3600)}" if rate > 0 else "ETA -")
        self.log(" | ".join(parts))

    @staticmethod
    def _reason(record) -> str:
        lines = [line.strip() for line in (record.message or "").splitlines() if line.strip()]
        return lines[-1][:200] if lines else "no message"

    def expire_leases(self) -> list[str]:
        """End (INVALID) every trial whose worker has not called within the lease; return their ids."""
        expired = []
        with self._lock:
            now = self.clock()
            stalled = now - self._last_reap - 1.0
            self._last_reap = now
            if stalled > 0:
                # This chief could not check for that long (a slow oracle call, an overloaded
                # machine): workers get the time back rather than losing their trials to it.
                with self._seen_lock:
                    for tuner_id in self.last_seen:
                        self.last_seen[tuner_id] = min(now, self.last_seen[tuner_id] + stalled)
            for tuner_id, trial in list(self.oracle.ongoing_trials.items()):
                age = now - self.last_seen.get(tuner_id, self.started)
                if age <= self.lease_timeout:
                    continue
                self.counters["lease_expired"] += 1
                lost = trial_module.Trial(trial.hyperparameters.copy(), trial_id=trial.trial_id,
                                          status=TrialStatus.INVALID,
                                          message=f"worker {tuner_id} ({self.peers.get(tuner_id, 'never seen')}) "
                                                  f"stopped reporting: no call for {age:.1f} s > lease "
                                                  f"{self.lease_timeout:g} s (killed, hung or lost)")
                self.log(f"Trial {trial.trial_id}: lease of {tuner_id} expired after {age:.1f} s")
                self.oracle.tuner_ids.discard(tuner_id)
                self._end(lost, tuner_id)
                expired.append(trial.trial_id)
        return expired

    def _restore_ongoing(self) -> None:
        """After a restart, give each trial that was running back to its worker for one lease."""
        if not os.path.exists(kti.oracle_file(self.oracle)):
            return
        saved = read_state(kti.project_dir(self.oracle)).get("ongoing_trials", {})
        queue = kti.retry_queue(self.oracle)
        # keras-tuner's end_trial saves oracle.json before it forgets the trial as ongoing, so a
        # chief killed in between would re-queue (and re-run, and count twice) a finished trial.
        ended = set(self.oracle.end_order)
        for trial_id in [t for t in queue if t in ended and self.oracle.trials[t].status != TrialStatus.INVALID]:
            queue.remove(trial_id)
            self.log(f"Trial {trial_id} had ended when the chief stopped: not re-run")
        for tuner_id, trial_id in saved.items():
            if trial_id in queue and self.oracle.trials[trial_id].status == TrialStatus.RUNNING:
                queue.remove(trial_id)
                self.oracle.ongoing_trials[tuner_id] = self.oracle.trials[trial_id]
                self.last_seen[tuner_id] = self.clock()
                self.log(f"Trial {trial_id} was running on {tuner_id} when the chief stopped: kept for it "
                         f"for {self.lease_timeout:g} s")

    # --- when the search is over ---------------------------------------------------------
    def search_over(self) -> bool:
        with self._lock:
            if self.fatal is not None:
                return True
            if self.oracle.ongoing_trials or kti.retry_queue(self.oracle):
                return False
            all_created = bool(self.oracle.max_trials) and len(self.oracle.trials) >= self.oracle.max_trials
            return self.stop_seen or all_created

    def request_stop(self) -> None:
        """Stop serving at the next check (the search state on disk stays resumable)."""
        self.stop_requested = True

    def may_exit(self) -> bool:
        """Over, and every worker still alive has been told STOPPED (or the linger time passed)."""
        if self.stop_requested:
            return True
        if not self.search_over():
            return False
        with self._lock:
            now = self.clock()
            if self.finished_at is None:
                self.finished_at = now
            if now - self.finished_at > LINGER_SECONDS:
                return True
            alive = {t for t, seen in self.last_seen.items() if now - seen < self.lease_timeout}
            return alive <= self.told_stop

    # --- the side service ----------------------------------------------------------------
    def Hello(self, request: dict, context) -> dict:
        tuner_id, session = self._identity(context)
        differences = protocol.settings_differences(self.settings, request.get("settings", {}))
        if differences:  # refused before any bookkeeping: a worker of another search leaves no trace here
            self.counters["refused_settings"] += 1
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"worker {tuner_id} ({context.peer()}) runs another search than this chief; it must not "
                          f"feed this one. Differences: {'; '.join(differences)}")
        self._record(context, tuner_id, session)
        return {"lease_timeout": self.lease_timeout, "heartbeat_interval": self.heartbeat_interval,
                "digest": self.digest}

    def Heartbeat(self, request: dict, context) -> dict:
        tuner_id = self._caller(context)
        with self._lock:
            holder = self._holder(str(request.get("trial_id")))
        return {"leased": holder == tuner_id}

    def Stats(self, request: dict, context) -> dict:
        self._caller(context, check_settings=False)
        return self.stats(include_times=bool(request.get("times")))

    def stats(self, include_times: bool = False) -> dict:
        with self._lock:
            out = {**self.counters, "trials": len(self.oracle.trials), "ended": len(self.oracle.end_order),
                   "ongoing": len(self.oracle.ongoing_trials), "queued": len(kti.retry_queue(self.oracle)),
                   "create_ms_median": 1000 * (_percentile(self.create_times.wall, 0.5) or 0),
                   "end_ms_median": 1000 * (_percentile(self.end_times.wall, 0.5) or 0),
                   "span_seconds": (self.last_end - self.first_start) if self.last_end and self.first_start else 0,
                   "span_cpu_seconds": (self.last_end_cpu - self.first_start_cpu)
                   if self.last_end_cpu is not None and self.first_start_cpu is not None else 0,
                   "timed_ends": len(self.end_times.wall)}
            for interceptor in self.interceptors:
                out.update(interceptor.overhead())
            if include_times:
                for name, times in (("create", self.create_times), ("end", self.end_times)):
                    out[f"{name}_seconds"], out[f"{name}_cpu_seconds"] = list(times.wall), list(times.cpu)
        return out

    def side_handler(self) -> grpc.GenericRpcHandler:
        def unary(method):
            return grpc.unary_unary_rpc_method_handler(
                method, request_deserializer=protocol.decode, response_serializer=protocol.encode)

        return grpc.method_handlers_generic_handler(
            protocol.SIDE_SERVICE, {"Hello": unary(self.Hello), "Heartbeat": unary(self.Heartbeat),
                                    "Stats": unary(self.Stats)})


def check_address_free(host: str, port: int) -> None:
    """Fail early (before the chief touches its directory) if the port cannot be bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ValueError(f"The chief cannot serve on {host}:{port}: unknown address ({error}). "
                         f"Received: KERASTUNER_ORACLE_IP={host!r}") from None
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as error:
            raise ValueError(f"The chief cannot serve on {host}:{port}: {error.strerror} (is another chief or "
                             f"program using the port?). Received: KERASTUNER_ORACLE_PORT={port}") from None


def serve(oracle, settings: Mapping[str, Any], *, host: str, port: int,
          lease_timeout: float = protocol.DEFAULT_LEASE_TIMEOUT, log: Callable[[str], None] = print,
          server_credentials: grpc.ServerCredentials | None = None, interceptors=(),
          on_servicer: Callable[[ChiefServicer], None] | None = None, poll: float = 0.1) -> ChiefServicer:
    """Serve `oracle` to workers until the search is over; return the servicer (its counters).

    Raises RuntimeError when the oracle stopped the search (too many consecutive failures).
    """
    servicer = ChiefServicer(oracle, settings, lease_timeout=lease_timeout, log=log)
    if on_servicer is not None:
        on_servicer(servicer)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=SERVER_THREADS), interceptors=list(interceptors),
                         options=[("grpc.so_reuseport", 0)])
    for interceptor in interceptors:
        if hasattr(interceptor, "bind_servicer"):
            interceptor.bind_servicer(servicer)
    kti.service_grpc.add_OracleServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers((servicer.side_handler(),))
    address = f"{host}:{port}"
    try:
        bound = (server.add_secure_port(address, server_credentials) if server_credentials is not None
                 else server.add_insecure_port(address))
    except RuntimeError as error:
        raise ValueError(f"The chief cannot serve on {address} ({error}). "
                         f"Received: KERASTUNER_ORACLE_IP={host!r}, KERASTUNER_ORACLE_PORT={port}") from None
    if not bound:
        raise ValueError(f"The chief cannot serve on {address}: the port is in use or the address is not local. "
                         f"Received: KERASTUNER_ORACLE_IP={host!r}, KERASTUNER_ORACLE_PORT={port}")
    server.start()
    log(f"nasnet search chief: serving the oracle on {address} ({'TLS' if server_credentials else 'plaintext'}, "
        f"lease {lease_timeout:g} s)")
    try:
        while not servicer.may_exit():
            time.sleep(poll)
            servicer.expire_leases()
    finally:
        server.stop(grace=1).wait()
    stats = servicer.stats()
    log("nasnet search chief: done: " + ", ".join(f"{k} {v}" for k, v in stats.items() if isinstance(v, int)))
    if servicer.fatal is not None:
        raise RuntimeError(servicer.fatal)
    return servicer
