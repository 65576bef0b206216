"""Checkpoints under faults: a full disk stops the run cleanly, a damaged file is skipped.

* Writing (`writing`): the checkpoint is built in memory (`model_files.weights_image`: HDF5
  never writes to the disk, because HDF5 meeting a full disk mid-file crashed the
  interpreter at exit, SIGSEGV, with the partial left), its exact size is checked against
  the free space, and its bytes are copied with ordinary Python I/O (`fileio.copy_bytes`)
  into a partial beside it (`fileio.atomic_path`), renamed only when complete. A disk that
  fills after the check gives a plain OSError during the copy. When the write fails --
  ENOSPC, EDQUOT, EIO, a read-only file system -- the partial is removed, the earlier
  checkpoints stay as they were, and `CheckpointWriteFailed` says why and which checkpoint
  a re-run will resume from.
* Reading (`newest_intact`): a resume takes the newest checkpoint that opens as HDF5; a
  truncated newer one (a disk that filled while an older version of this package wrote
  it, a copy cut short) is reported in a warning naming it and the one used instead.
* Partials of writers that died (`remove_partials`): deleted before each write; a live
  writer's partial is never touched (`fileio.remove_stale_partials`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import warnings

from nasnet_keras import fileio
from nasnet_keras.errors import RunFailed
from nasnet_keras.model_files import UnreadableWeightsError, check_weights

# Partials of this package before it used `fileio`: `partial-<step>.weights.h5`.
_OLD_PARTIAL = re.compile(r"^partial-\d+\.weights\.h5$")


class CheckpointWriteFailed(RunFailed):
    """A checkpoint could not be written (disk full, read-only, I/O error); nothing was lost."""


def remove_partials(folder: str) -> list[str]:
    removed = fileio.remove_stale_partials(folder)
    for name in os.listdir(folder):
        if _OLD_PARTIAL.match(name):
            os.remove(os.path.join(folder, name))
            removed.append(os.path.join(folder, name))
    return removed


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.errno is not None:
        return os.strerror(error.errno)
    text = str(error)
    if "errno = 28" in text or "No space left" in text:
        return os.strerror(errno.ENOSPC)
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"[:300]


def _free_bytes(folder: str) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


_MARGIN = 64 * 1024  # the file system's own metadata for a new file


@contextlib.contextmanager
def writing(run_dir, path: str, step: int, size: int | None = None):
    """Yield the partial path to write checkpoint `path` into; a failure raises CheckpointWriteFailed.

    When `size` (the bytes about to be written) is given, the free space is checked first,
    so a write that cannot fit is refused before anything is written; a disk that fills
    later is caught during the write.
    """
    before = run_dir.latest_checkpoint()
    kept = (f"the last good checkpoint, {os.path.basename(before[1])} (step {before[0]}), is kept"
            if before else "no earlier checkpoint exists")
    if size is not None:
        free = _free_bytes(os.path.dirname(path))
        if free is not None and free < size + _MARGIN:
            raise CheckpointWriteFailed(
                f"Could not write checkpoint {path!r} (step {step}): {os.strerror(errno.ENOSPC)} ({free:,} bytes free, "
                f"{size:,} needed); nothing was written and {kept}; free space and run the same command again to resume"
            )
    try:
        with fileio.atomic_path(path) as temporary:
            yield temporary
    except (OSError, RuntimeError) as error:  # h5py reports some write failures as RuntimeError
        raise CheckpointWriteFailed(
            f"Could not write checkpoint {path!r} (step {step}): {_reason(error)}. The partial file was removed and "
            f"{kept}; free space (or fix the directory) and run the same command again to resume"
        ) from error


def newest_intact(run_dir, model) -> str:
    """The newest checkpoint of `run_dir` that is readable and fits `model`'s genotype.

    Unreadable (truncated) ones are skipped with a warning; one written for another
    genotype is an error (the run directory is not this run's), not skipped.
    """
    found = run_dir.checkpoints()
    if not found:
        raise ValueError(f"{run_dir.path} has no checkpoint to resume from")
    skipped = []
    for step, path in reversed(found):
        try:
            check_weights(model, path)
        except UnreadableWeightsError as error:
            skipped.append((path, error))
            continue
        if skipped:
            warnings.warn(
                f"Checkpoint {skipped[0][0]} is damaged ({skipped[0][1]}); resuming from the newest intact one, "
                f"{path} (step {step})" + (f"; {len(skipped) - 1} more damaged one(s) skipped" if len(skipped) > 1
                                           else ""),
                stacklevel=3,
            )
        return path
    raise ValueError(
        f"Every checkpoint in {run_dir.file('checkpoints')} is damaged ({'; '.join(str(e) for _, e in skipped)}). "
        "Nothing was changed; restore them from a copy, or start again with --overwrite"
    )
