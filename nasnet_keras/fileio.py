"""Atomic files and directories: a reader or a resume never sees half of one.

Every file that a reader (a browser, TF Serving, another worker) or a resume relies on is
written through `atomic_path` / `atomic_directory`: the bytes go to a hidden sibling named
`.NAME.partial-PID-TOKEN<suffix>` in the same directory (same file system, so the final
`os.replace` is atomic), and only a complete write is renamed into place. A failed write
removes its partial; a writer killed with SIGKILL leaves one behind, which
`remove_stale_partials` deletes once its PID is no longer alive (a live writer's partial is
never touched).

The partial keeps the final name's suffix (`.weights.h5`, `.keras`, `.png`, ...) because
Keras, h5py and matplotlib choose the format from the file name.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
from typing import Iterator

PARTIAL_MARK = ".partial-"
_PARTIAL_RE = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)-(?P<token>[0-9a-f]+)")

__all__ = [
    "atomic_path",
    "atomic_directory",
    "write_text",
    "write_json",
    "copy_bytes",
    "remove_stale_partials",
    "is_partial",
]


def _suffix(name: str) -> str:
    """The extensions of a file name (`ckpt.weights.h5` -> `.weights.h5`); `` if none."""
    stem = name.lstrip(".")
    return stem[stem.index("."):] if "." in stem else ""


def partial_name(path: str) -> str:
    """A fresh hidden sibling of `path` that `remove_stale_partials` recognises."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}{PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(4)}{_suffix(name)}")


def is_partial(name: str) -> bool:
    """True for the base name of a partial written by this module."""
    return _PARTIAL_RE.match(name) is not None


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


@contextlib.contextmanager
def atomic_path(path: str, *, durable: bool = True) -> Iterator[str]:
    """Yield a temporary file path; on success it replaces `path` atomically.

    The caller writes the temporary path by any means (`open`, `model.save`,
    `np.savez`, `fig.savefig`). If the block raises, the temporary file is removed and
    `path` is left as it was. With `durable` (the default) the data is flushed to disk
    before the rename, so a power loss leaves the old file or the new one, not an empty
    one; `durable=False` skips the two fsyncs (milliseconds each) for files rewritten many
    times a second, which stay atomic for any killed process.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = partial_name(path)
    try:
        yield temporary
        if not os.path.exists(temporary):
            raise FileNotFoundError(errno.ENOENT, "the writer produced no file", temporary)
        if durable:
            with open(temporary, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise
    if durable:
        _fsync_directory(directory)


@contextlib.contextmanager
def atomic_directory(path: str, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary directory; on success it becomes `path` in one rename.

    An existing `path` is an error unless `overwrite`; then the old one is moved aside
    and deleted only after the new one is in place (a crash in between leaves a partial
    that `remove_stale_partials` deletes, never a missing version).
    """
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(errno.EEXIST, "already exists; pass overwrite=True to replace it", path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    temporary = partial_name(path)
    os.makedirs(temporary)
    try:
        yield temporary
        if os.path.lexists(path):
            old = partial_name(path)
            os.replace(path, old)
            try:
                os.replace(temporary, path)
            except BaseException:
                os.replace(old, path)
                raise
            _remove(old)
        else:
            os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise
    _fsync_directory(parent)


_CHUNK = 16 * 1024 * 1024


def copy_bytes(data: bytes, path: str) -> None:
    """Write `data` to the new file `path` with ordinary Python I/O, in 16 MiB chunks.

    Why: a full disk (or quota, or I/O error) then surfaces as a plain `OSError` from a
    `write`, `flush` or `close` at whatever point it happens, which the caller can report
    and clean up; libraries with their own I/O layer (HDF5) may instead crash. Meant for a
    partial of `atomic_path`, which removes it on failure.
    """
    view = memoryview(data)
    with open(path, "wb") as f:
        for start in range(0, len(view), _CHUNK):
            f.write(view[start:start + _CHUNK])


def write_text(path: str, text: str, *, durable: bool = True) -> None:
    """Write `text` (UTF-8) to `path` atomically (`durable`: see `atomic_path`)."""
    with atomic_path(path, durable=durable) as temporary:
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)


def write_json(path: str, obj, *, indent: int | None = 2, sort_keys: bool = False, allow_nan: bool = False,
               durable: bool = True) -> None:
    """Write `obj` as JSON atomically.

    Strict by default (NaN and infinity are an error, not invalid JSON); `allow_nan=True`
    writes Python's `NaN`/`Infinity` tokens, for keras-tuner's own files, whose format has them.
    """
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan)
    write_text(path, text + "\n", durable=durable)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_partials(directory: str) -> list[str]:
    """Delete the partials in `directory` whose writer is dead; return what was deleted.

    A partial's writer is identified by the PID in its name; partials of live processes
    (including this one) are kept, so a concurrent writer is never disturbed.
    """
    removed = []
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for name in names:
        match = _PARTIAL_RE.match(name)
        if match and not _pid_alive(int(match["pid"])):
            full = os.path.join(directory, name)
            _remove(full)
            removed.append(full)
    return removed
