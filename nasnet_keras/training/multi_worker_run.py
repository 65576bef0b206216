"""The run directory of a multi-worker job: one directory, written by the chief, read by all.

Every worker of a `MultiWorkerMirroredStrategy` job opens the same `--directory`, which
must therefore be on storage all of them see (NFS, a cluster file system, GCS FUSE),
as Keras' `BackupAndRestore` requires of its backup directory. Within it:

* only the chief writes: manifest, checkpoints, events, CSV/TensorBoard logs, final model;
* the other workers go through the same saves (TensorFlow's convention: a save may run
  collectives, so all workers must take part) into a temporary directory of their own,
  deleted at once (`WorkerRunDirectory`);
* after every checkpoint the workers meet at a barrier, so none reads a checkpoint
  (the mid-run restore of raw weights after an EMA swap) before the chief has renamed
  it into place;
* at start-up (`open_run`) the workers first compare their run fingerprints (manifest +
  training settings: any difference would make them compute different things, or hang
  in mismatched collectives) and then their view of the directory; after the chief has
  written the manifest (`confirm_shared`), every worker must read the same bytes, which
  is how a directory that is not actually shared is caught.

Resume is the single-machine one: every worker loads the latest checkpoint of the shared
directory, so the step count, learning-rate schedule and drop-path schedule continue.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from typing import Any, Iterator

from nasnet_keras.training.checkpointing import COMPARED, MANIFEST, RunDirectory
from nasnet_keras.training.distribution import Distribution

SAME_COMMAND = ("Start every worker with the same command (model, recipe, --set values, data, seed, flags) and "
                "the same package versions; only TF_CONFIG's task may differ between workers")


class WorkerRunDirectory(RunDirectory):
    """A run directory as one worker of a multi-worker job sees it: the chief writes, the others rehearse."""

    def __init__(self, path: str | os.PathLike, distribution: Distribution):
        super().__init__(path)
        self.distribution = distribution
        self.is_chief = distribution.is_chief

    def start(self, manifest: dict, overwrite: bool = False) -> None:
        if self.is_chief:
            super().start(manifest, overwrite)

    def log_event(self, event: str, **fields: Any) -> None:
        if self.is_chief:
            super().log_event(event, **{"task": self.distribution.task, **fields})

    @contextlib.contextmanager
    def output(self, name: str) -> Iterator[str]:
        if self.is_chief:
            yield self.file(name)
            return
        scratch = tempfile.mkdtemp(prefix=f"nasnet-{self.distribution.task.replace(':', '')}-")
        try:
            yield os.path.join(scratch, name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def save(self, model, step: int, keep: int = 2) -> str:
        if self.is_chief:
            path = super().save(model, step, keep)
        else:
            with self.output(f"ckpt-{step:09d}.weights.h5") as path:
                model.save_weights(path, overwrite=True)
        self.distribution.barrier(f"while checkpoint step {step} was saved")
        return path


def fingerprint(manifest: dict, settings: dict[str, Any]) -> dict[str, Any]:
    """What must be equal on every worker: the compared manifest sections, versions and settings."""
    return {
        **{key: manifest.get(key) for key in COMPARED},
        "versions": {key: manifest.get(key) for key in sorted(manifest) if key.endswith("_version")},
        "settings": settings,
    }


def open_run(distribution: Distribution, directory: str, manifest: dict, settings: dict[str, Any],
             overwrite: bool) -> tuple[RunDirectory, bool]:
    """The run directory and whether this run resumes it; under multi-worker, agreed on by every worker.

    Writes nothing. Raises ValueError (on every worker alike) when the workers were
    started differently, when the directory holds another run, or when the workers
    do not see the same directory.
    """
    if not distribution.multi_worker:
        run_dir = RunDirectory(directory)
        return run_dir, run_dir.check(manifest, overwrite)
    distribution.agree("how to train", fingerprint(manifest, settings), SAME_COMMAND)
    run_dir = WorkerRunDirectory(directory, distribution)
    try:
        resume = run_dir.check(manifest, overwrite)
        latest = run_dir.latest_checkpoint()
        status: dict[str, Any] = {"error": None, "resume": resume, "checkpoint": latest[0] if latest else None}
    except ValueError as error:
        status = {"error": str(error)}
    statuses = distribution.exchange(status)
    tasks = [f"{job}:{i}" for job, i in distribution.cluster.training_tasks]
    for task, theirs in zip(tasks, statuses):
        if theirs.get("error"):
            raise ValueError(f"{task}: {theirs['error']}")
    views = {task: theirs for task, theirs in zip(tasks, statuses)}
    if len({(s["resume"], s["checkpoint"]) for s in statuses}) > 1:
        seen = "; ".join(f"{task} sees " + (f"a checkpoint at step {s['checkpoint']}" if s["checkpoint"] is not None
                                             else "no checkpoint") for task, s in views.items())
        raise ValueError(
            f"The workers do not see the same run directory {directory!r}: {seen}. A multi-worker run needs one "
            "directory that every worker reads (a shared file system, same path on every machine)"
        )
    return run_dir, resume


def confirm_shared(distribution: Distribution, run_dir: RunDirectory) -> None:
    """After the chief wrote the manifest: every worker must read the same manifest bytes."""
    if not distribution.multi_worker:
        return
    distribution.barrier("while the chief created the run directory")
    try:
        with open(run_dir.file(MANIFEST), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    except OSError:
        digest = None
    digests = distribution.exchange({"manifest": digest})
    tasks = [f"{job}:{i}" for job, i in distribution.cluster.training_tasks]
    for task, theirs in zip(tasks[1:], digests[1:]):
        if theirs["manifest"] != digests[0]["manifest"]:
            what = "cannot read it" if theirs["manifest"] is None else "reads a different file"
            raise ValueError(
                f"The run directory {run_dir.path!r} is not shared: the chief wrote {MANIFEST} there but {task} "
                f"{what}. A multi-worker run needs one directory that every worker reads and the chief writes (NFS, "
                "a cluster file system, GCS FUSE), at the same path on every machine"
            )
