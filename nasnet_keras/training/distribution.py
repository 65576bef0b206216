"""Where a run trains: one device, the GPUs of one machine, several machines, or a TPU.

`nasnet train --strategy auto|one-device|mirrored|multi-worker|tpu` picks a
`tf.distribute` strategy (see `choose`):

* one-device: no distribution (TensorFlow's default strategy: the first GPU, else the CPU);
* mirrored: `MirroredStrategy` over the GPUs of this machine;
* multi-worker: `MultiWorkerMirroredStrategy` over the machines named by `TF_CONFIG`
  (TensorFlow's cluster description, the same variable Keras and Model Garden read);
* tpu: `TPUStrategy` through `TPUClusterResolver` (`--tpu NAME`, `$TPU_NAME`, else the
  Cloud TPU VM's own "local" TPU);
* auto: multi-worker when `TF_CONFIG` names several chief/worker tasks, mirrored when
  several GPUs are visible, else one-device.

The recipe's `batch_size` is the *global* batch whatever the strategy: each of the R
replicas gets `batch_size / R` images (an error when R does not divide it), and the
learning rate follows the recipe's rule `base_learning_rate * batch_size /
base_batch_size` (linear in the global batch, `recipes.Recipe.learning_rate`), so the
same command trains the same model on one GPU or on eight machines.

A multi-worker job is only correct when every worker runs the same computation, so
start-up checks what one worker cannot see alone (`Distribution.agree`): the workers
exchange their run fingerprints (manifest + training settings) and their view of the
run directory through collective all-gathers, and every worker fails with the same
error naming the first differing field. A worker that dies makes the others fail in
their next collective (TensorFlow's coordination service misses its heartbeats within
about 10 s; a peer that hangs is caught by the collective timeout): `peer_failures`
turns that into `PeerFailure`, which `nasnet train` reports with exit status 75
(EX_TEMPFAIL). The job is then restarted as a whole -- every worker, same command, same
TF_CONFIG -- and resumes from the last checkpoint (Keras' BackupAndRestore semantics,
with our exact-step checkpoints).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import socket
from typing import Any, Iterator, Mapping

STRATEGIES = ("auto", "one-device", "mirrored", "multi-worker", "tpu")
# TF_CONFIG job names TensorFlow knows; only chief and worker tasks train here.
KNOWN_JOBS = ("chief", "worker", "evaluator", "ps")
TRAINING_JOBS = ("chief", "worker")
# The exit status of a worker whose peer failed: "temporary failure, try again" (sysexits.h),
# so that a cluster manager restarting failed jobs restarts this one.
PEER_FAILURE_EXIT_CODE = 75
DEFAULT_COLLECTIVE_TIMEOUT = 1800.0


class PeerFailure(RuntimeError):
    """Another worker of a multi-worker job failed or stopped responding; restart the whole job."""


# --- TF_CONFIG ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """A validated TF_CONFIG: the cluster's jobs (name -> "host:port" list) and this task."""

    cluster: dict[str, list[str]]
    task_type: str
    task_index: int

    @property
    def training_tasks(self) -> list[tuple[str, int]]:
        """(job, index) of every task that trains, in TensorFlow's order: the chief first."""
        return [(job, i) for job in TRAINING_JOBS for i in range(len(self.cluster.get(job, [])))]

    @property
    def num_workers(self) -> int:
        return len(self.training_tasks)

    @property
    def is_chief(self) -> bool:
        """TensorFlow's rule: the "chief" task if there is one, else worker 0."""
        return self.training_tasks[0] == (self.task_type, self.task_index)

    @property
    def address(self) -> str:
        return self.cluster[self.task_type][self.task_index]

    @property
    def task(self) -> str:
        return f"{self.task_type}:{self.task_index}"


def _tf_config_error(problem: str, text: str) -> ValueError:
    shown = text if len(text) <= 400 else text[:400] + "..."
    return ValueError(
        f"TF_CONFIG {problem}. Expected JSON like "
        '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}} '
        f"(jobs: {', '.join(KNOWN_JOBS)}). Received: TF_CONFIG={shown!r}"
    )


def _check_address(job: str, index: int, address, text: str) -> str:
    if not isinstance(address, str) or address.count(":") < 1:
        raise _tf_config_error(f"has cluster.{job}[{index}]={address!r}, which is not a 'host:port' string", text)
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _tf_config_error(f"has cluster.{job}[{index}]={address!r}: the port must be a number in 1..65535",
                               text)
    return address


def parse_tf_config(text: str | None) -> ClusterConfig | None:
    """The cluster described by TF_CONFIG's JSON `text`; None when unset or empty.

    Raises ValueError naming the problem and the value for JSON that is malformed, a
    cluster or task that is missing or mistyped, an unknown job, a task index out of
    range, a bad or repeated address, or a task that does not train (ps, evaluator).
    """
    if text is None or not text.strip():
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise _tf_config_error(f"is not valid JSON ({error})", text) from None
    if not isinstance(config, dict):
        raise _tf_config_error(f"must be a JSON object, not {type(config).__name__}", text)
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise _tf_config_error("has no 'cluster' object naming the jobs' addresses", text)
    unknown = sorted(set(cluster) - set(KNOWN_JOBS))
    if unknown:
        raise _tf_config_error(f"names unknown job(s) {unknown} in its cluster", text)
    parsed: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for job, addresses in cluster.items():
        if isinstance(addresses, dict):  # TensorFlow also accepts {"0": "host:port", ...}
            try:
                addresses = [addresses[k] for k in sorted(addresses, key=int)]
            except (ValueError, TypeError):
                raise _tf_config_error(f"has cluster.{job} with non-numeric task indices", text) from None
        if not isinstance(addresses, list) or not addresses:
            raise _tf_config_error(f"has cluster.{job}={addresses!r}; expected a non-empty list of addresses", text)
        parsed[job] = [_check_address(job, i, a, text) for i, a in enumerate(addresses)]
        for i, address in enumerate(parsed[job]):
            if address in seen:
                raise _tf_config_error(f"gives {job}:{i} and {seen[address]} the same address {address!r}", text)
            seen[address] = f"{job}:{i}"
    if len(parsed.get("chief", [])) > 1:
        raise _tf_config_error(f"has {len(parsed['chief'])} chief tasks; a cluster has at most one", text)
    if "ps" in parsed:
        raise _tf_config_error(
            "names parameter servers ('ps'): that is ParameterServerStrategy's layout, which `nasnet train` does "
            "not use; list the machines as 'chief'/'worker' tasks (synchronous MultiWorkerMirroredStrategy)", text)
    if not isinstance(task, dict):
        raise _tf_config_error("has no 'task' object ({'type': ..., 'index': ...}) saying which task this is", text)
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in parsed:
        raise _tf_config_error(
            f"has task.type={task_type!r}, which is not a job of its cluster ({', '.join(parsed)})", text)
    if task_type not in TRAINING_JOBS:
        raise _tf_config_error(
            f"has task.type={task_type!r}: only 'chief' and 'worker' tasks train; a side-car evaluator is not "
            "part of `nasnet train` (the chief evaluates at the end of training)", text)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(parsed[task_type]):
        raise _tf_config_error(
            f"has task.index={index!r}, but its {task_type!r} job has {len(parsed[task_type])} address(es), "
            f"so the index must be in 0..{len(parsed[task_type]) - 1}", text)
    if not any(parsed.get(job) for job in TRAINING_JOBS):
        raise _tf_config_error("has no 'chief' or 'worker' task", text)
    return ClusterConfig(parsed, task_type, index)


def check_port_free(address: str, task: str = "this task") -> None:
    """Fail now, naming the address, if this task's port is taken (TensorFlow's server would fail obscurely).

    TensorFlow's gRPC server listens on the port on every interface and sets
    SO_REUSEADDR, so this probe does too: a port held only by connections closing from
    an earlier run (TIME_WAIT) is free; one another process listens on is not.
    """
    port = int(address.rpartition(":")[2])
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("", port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ValueError(
                f"TF_CONFIG gives {task} the address {address!r}, but port {port} is already in use on this machine "
                "(another process listens there, e.g. a worker of an earlier run that is still alive). Stop that "
                "process or give the task another port in TF_CONFIG's cluster (the same TF_CONFIG on every worker)"
            ) from None
        if error.errno == errno.EACCES:
            raise ValueError(
                f"TF_CONFIG gives {task} the address {address!r}, but this user may not listen on port {port}; "
                "use a port above 1023"
            ) from None
        raise
    finally:
        probe.close()


# --- choosing a strategy -----------------------------------------------------------------
def choose(strategy: str, cluster: ClusterConfig | None, num_gpus: int) -> str:
    """The concrete strategy name for `--strategy` given TF_CONFIG's cluster and this machine's GPUs."""
    strategy = str(strategy).replace("_", "-")
    if strategy not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {', '.join(STRATEGIES)}. Received: strategy={strategy!r}")
    several_workers = cluster is not None and cluster.num_workers > 1
    if strategy == "auto":
        if several_workers:
            return "multi-worker"
        return "mirrored" if num_gpus > 1 else "one-device"
    if strategy == "multi-worker" and cluster is None:
        raise ValueError(
            "--strategy multi-worker needs TF_CONFIG, the cluster description naming every worker's address and "
            "this task; see docs/distributed_training.md. Received: TF_CONFIG unset"
        )
    if strategy in ("one-device", "mirrored", "tpu") and several_workers:
        raise ValueError(
            f"TF_CONFIG names {cluster.num_workers} workers but --strategy {strategy} trains on this machine alone: "
            "every worker would train its own copy into the same directory. Use --strategy multi-worker (or auto), "
            "or unset TF_CONFIG"
        )
    return strategy


@dataclasses.dataclass
class Distribution:
    """The strategy a run trains under and what follows from it for batches, files and failures."""

    name: str
    strategy: Any  # tf.distribute.Strategy
    global_batch_size: int
    cluster: ClusterConfig | None = None
    _gather: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    @property
    def per_replica_batch_size(self) -> int:
        return self.global_batch_size // self.replicas

    @property
    def num_workers(self) -> int:
        return self.cluster.num_workers if self.name == "multi-worker" else 1

    @property
    def multi_worker(self) -> bool:
        return self.name == "multi-worker" and self.num_workers > 1

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run directory (always, except non-chief workers)."""
        return self.cluster.is_chief if self.name == "multi-worker" else True

    @property
    def task(self) -> str:
        return self.cluster.task if self.name == "multi-worker" else "chief:0"

    def describe(self, recipe) -> dict[str, Any]:
        """The batch split and learning-rate rule, as logged in events.jsonl and printed at start-up."""
        return {
            "strategy": self.name,
            "workers": self.num_workers,
            "replicas": self.replicas,
            "global_batch_size": self.global_batch_size,
            "per_replica_batch_size": self.per_replica_batch_size,
            "learning_rate": recipe.learning_rate,
            "learning_rate_rule": (f"{recipe.base_learning_rate} x global batch {recipe.batch_size} / "
                                   f"{recipe.base_batch_size} (linear in the global batch, for every strategy)"),
            "task": self.task,
        }

    def training_batches(self, dataset):
        """The global-batch stream split so that R replicas see exactly one process's batches.

        Every worker builds the same seeded stream of global batches (the single-machine
        pipeline) and keeps its replicas' rows: replica r of step t gets rows
        [r * b, (r + 1) * b) of global batch t. So a multi-worker step averages the
        gradients of precisely the global batch one process would train on, whatever the
        number of workers -- unlike TensorFlow's automatic DATA sharding, whose graph
        rewrite does not keep the shuffle order of the single-process pipeline. The
        price: each worker prepares the whole global batch (cheap for CIFAR-sized
        images; for ImageNet the input work per worker does not shrink with workers).
        """
        if not self.multi_worker:
            return dataset
        import tensorflow as tf

        per_replica = self.per_replica_batch_size
        local_replicas = self.replicas // self.num_workers

        def worker_batches(context):
            first = context.input_pipeline_id * local_replicas * per_replica
            rows = local_replicas * per_replica

            def keep(*batch):
                return tf.nest.map_structure(lambda tensor: tensor[first:first + rows], batch)

            local = dataset.map(keep)
            return local.rebatch(per_replica) if local_replicas > 1 else local

        return self.strategy.distribute_datasets_from_function(worker_batches)

    # --- collectives across workers ---------------------------------------------------
    def _all_gather(self, values) -> "Any":
        """All-gather a 1-D int32 vector from every replica: [replicas, len] as NumPy, the chief's first."""
        import numpy as np
        import tensorflow as tf

        if self._gather is None:
            strategy = self.strategy

            @tf.function  # traced once per vector length (collectives need static shapes)
            def gather(local):
                # Captured, not passed through strategy.run(args=...), which MWMS rejects for all_gather.
                return strategy.run(lambda: tf.distribute.get_replica_context().all_gather(tf.identity(local), axis=0))

            self._gather = gather
        local = tf.constant(np.asarray(values, dtype=np.int32)[None, :])
        return np.asarray(self.strategy.experimental_local_results(self._gather(local))[0])

    def exchange(self, payload: Any) -> list[Any]:
        """Every worker's JSON-able `payload`, in TensorFlow's task order (chief first); a collective."""
        import numpy as np

        if not self.multi_worker:
            return [payload]
        data = np.frombuffer(json.dumps(payload, sort_keys=True).encode("utf-8"), dtype=np.uint8)
        with peer_failures(self, "while the workers compared their settings at start-up"):
            # Rounded up to a power of two, so that few lengths (traces) ever occur.
            size = 1 << max(6, (int(self._all_gather([len(data)]).max()) - 1).bit_length())
            gathered = self._all_gather(np.pad(data, (0, size - len(data))).astype(np.int32))
        per_worker = self.replicas // self.num_workers
        rows = [gathered[worker * per_worker].astype(np.uint8).tobytes().rstrip(b"\0")
                for worker in range(self.num_workers)]
        return [json.loads(row.decode("utf-8")) for row in rows]

    def barrier(self, reason: str = "at a barrier") -> None:
        """Wait until every worker reaches this point (a one-number all-gather)."""
        if self.multi_worker:
            with peer_failures(self, reason):
                self._all_gather([0])

    def agree(self, what: str, payload: dict[str, Any], hint: str) -> list[dict[str, Any]]:
        """Exchange `payload` and fail on every worker, naming the field, unless all equal the chief's."""
        gathered = self.exchange(payload)
        names = [f"{job}:{i}" for job, i in self.cluster.training_tasks] if self.multi_worker else ["chief:0"]
        for name, theirs in zip(names[1:], gathered[1:]):
            differences = _differences(gathered[0], theirs)
            if differences:
                raise ValueError(
                    f"The workers of this job disagree on {what}: {name} differs from {names[0]} in "
                    f"{'; '.join(differences[:5])}{' ...' if len(differences) > 5 else ''} "
                    f"(chief's value != worker's value). {hint}"
                )
        return gathered


def _differences(ours: dict, theirs: dict) -> list[str]:
    from nasnet_keras.training.checkpointing import flatten_keys

    a, b = flatten_keys(ours), flatten_keys(theirs)
    return [f"{key}: {a.get(key)!r} != {b.get(key)!r}" for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


# --- building the strategy ---------------------------------------------------------------
def make_distribution(strategy: str, global_batch_size: int, *, environ: Mapping[str, str] | None = None,
                      collective_timeout: float | None = DEFAULT_COLLECTIVE_TIMEOUT,
                      tpu: str | None = None) -> Distribution:
    """Validate the request (TF_CONFIG, ports, batch split) and build the strategy.

    Must run before TensorFlow executes anything in this process when the result is
    multi-worker (TensorFlow configures collectives at start-up only).
    """
    import tensorflow as tf

    from nasnet_keras.checks import check_int, check_number

    environ = os.environ if environ is None else environ
    check_int("batch_size", global_batch_size, minimum=1)
    check_number("collective_timeout", collective_timeout, minimum=0, exclusive_minimum=True, allow_none=True,
                 hint=" seconds (None: wait forever)")
    cluster = parse_tf_config(environ.get("TF_CONFIG"))
    name = choose(strategy, cluster, len(tf.config.list_physical_devices("GPU")))
    if name == "one-device":
        built = tf.distribute.get_strategy()
    elif name == "mirrored":
        built = tf.distribute.MirroredStrategy()
    elif name == "tpu":
        built = _tpu_strategy(tpu or environ.get("TPU_NAME") or "local")
    else:
        check_port_free(cluster.address, cluster.task)
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout)
        try:
            built = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        except RuntimeError as error:
            if "startup" in str(error) or "initialized" in str(error):
                raise ValueError(
                    "--strategy multi-worker must be set up before TensorFlow runs anything in this process "
                    f"({error}); start training in a fresh process, e.g. with the `nasnet train` command"
                ) from None
            raise
    distribution = Distribution(name, built, global_batch_size, cluster)
    check_batch_split(global_batch_size, distribution.replicas, name, distribution.num_workers)
    return distribution


def check_batch_split(global_batch_size: int, replicas: int, strategy: str, workers: int = 1) -> int:
    """The per-replica batch; an error naming both numbers when the replicas do not divide the global batch."""
    if global_batch_size % replicas:
        raise ValueError(
            f"The recipe's batch_size is the global batch and must divide evenly over the {replicas} replicas of "
            f"--strategy {strategy} ({workers} worker(s)); choose a multiple of {replicas} with --set batch_size=N. "
            f"Received: batch_size={global_batch_size}, replicas={replicas}"
        )
    return global_batch_size // replicas


def _tpu_strategy(tpu: str):
    """TPUStrategy on the TPU `tpu` names; a clear error where there is none. (Not run on a TPU here.)"""
    import tensorflow as tf

    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"--strategy tpu found no TPU for tpu={tpu!r} ({type(error).__name__}: {first[:300]}). Run on a Cloud "
            "TPU VM (tpu='local'), or name the TPU with --tpu NAME or $TPU_NAME"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


# --- batch norm over the global batch ------------------------------------------------------
def synchronize_batch_norm(model) -> int:
    """Make every BatchNormalization layer normalise over the global batch (all replicas); returns how many.

    By default each replica normalises over its own `batch / replicas` images (TF-slim's
    and the paper's setting). Synchronised statistics make R replicas compute exactly
    what one device does with the whole batch, at the cost of an all-reduce per layer.
    Keras reads `synchronized` when the layer is called, so setting it before the first
    step is enough. The statistics are computed in two passes (mean, then centred
    squares: `keras_distribute_fixes.two_pass_synchronized_moments`): Keras' one-pass
    E[x^2] - E[x]^2 makes R replicas' gradients drift from one device's.
    """
    import keras

    from nasnet_keras.layer_tree import walk
    from nasnet_keras.training.keras_distribute_fixes import two_pass_synchronized_moments

    count = 0
    for layer in walk(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
            two_pass_synchronized_moments(layer)
            count += 1
    return count


# --- failures of other workers -------------------------------------------------------------
def _peer_error_types():
    import tensorflow as tf

    return (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
            tf.errors.AbortedError, tf.errors.FailedPreconditionError, tf.errors.InternalError)


@contextlib.contextmanager
def peer_failures(distribution: Distribution | None, doing: str, resume_hint: str = "") -> Iterator[None]:
    """Turn TensorFlow's collective errors into `PeerFailure` under multi-worker training."""
    if distribution is None or not distribution.multi_worker:
        yield
        return
    try:
        yield
    except _peer_error_types() as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        cause = next((line for line in lines if "aborted" in line.lower() or "unhealthy" in line.lower()
                      or "deadline" in line.lower() or "reset" in line.lower()), lines[-1] if lines else "")
        raise PeerFailure(
            f"{distribution.task}: another worker of this multi-worker job failed or stopped responding {doing} "
            f"({type(error).__name__}: {cause.strip()[:300]}). This worker stops too. Restart every worker with the "
            f"same command and TF_CONFIG{resume_hint}"
        ) from None
