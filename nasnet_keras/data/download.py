"""A TFDS download with a time limit that holds, and no debris when it fails.

Why a child process: offline, TFDS (through urllib3's retries with back-off) keeps trying a
download for minutes, and a thread cannot be stopped from outside, so a limit enforced in
this process would return while the download goes on writing. The download therefore runs
in a child process (`python -m nasnet_keras.data.download`, its own session), which is
killed with its whole process group at the deadline. Whatever the attempt created under
the TFDS data directory (the `downloads/` entries, the dataset's `incomplete.*` directory)
is then removed, so a failed or stopped download leaves the directory as it was; what was
there before is never touched. A successful download keeps TFDS' own cache as TFDS does.

The limit: `NASNET_KERAS_DOWNLOAD_TIMEOUT` seconds (`none` for no limit), default 1800 s
for a download from the internet. Preparing from a `manual_dir` (ImageNet's archives, local
work of hours) has no default limit; the variable still applies when set.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

DOWNLOAD_TIMEOUT_ENV = "NASNET_KERAS_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800.0
_REASON_MARK = "nasnet_keras.data.download: failed: "
_SNAPSHOT_DEPTH = 3  # downloads/<dataset>/<file>, downloads/extracted/<dir>, <dataset>/incomplete.*

__all__ = ["DOWNLOAD_TIMEOUT_ENV", "DEFAULT_TIMEOUT_S", "DownloadFailed", "download_timeout", "download_and_prepare"]


class DownloadFailed(Exception):
    """The child could not download and prepare the dataset; `timed_out` says whether it was stopped."""

    def __init__(self, reason: str, timed_out: bool):
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


def download_timeout(manual: bool = False) -> float | None:
    """The limit in seconds from `NASNET_KERAS_DOWNLOAD_TIMEOUT` (None: no limit).

    Unset: 1800 s for an internet download, no limit for a `manual_dir` preparation.
    A value that is not a positive number of seconds or `none` is an error naming it.
    """
    text = os.environ.get(DOWNLOAD_TIMEOUT_ENV, "").strip()
    if not text:
        return None if manual else DEFAULT_TIMEOUT_S
    if text.lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"`{DOWNLOAD_TIMEOUT_ENV}` must be a positive number of seconds or 'none'. "
                         f"Received: {DOWNLOAD_TIMEOUT_ENV}={text!r}")
    return value


def default_data_dir() -> str:
    """TFDS' own default data directory (`$TFDS_DATA_DIR` or ~/tensorflow_datasets), read now."""
    from tensorflow_datasets.core import constants

    return os.path.expanduser(constants.get_default_data_dir())


def _snapshot(root: str, tops: tuple[str, ...]) -> set[str]:
    """Relative paths under `root/<top>` down to `_SNAPSHOT_DEPTH` levels (plus the tops)."""
    found = set()
    for top in tops:
        base = os.path.join(root, top)
        if not os.path.lexists(base):
            continue
        found.add(top)
        for current, dirs, files in os.walk(base):
            rel = os.path.relpath(current, root)
            depth = rel.count(os.sep) + 1
            for name in dirs + files:
                found.add(os.path.join(rel, name))
            if depth >= _SNAPSHOT_DEPTH:
                dirs[:] = []
    return found


def _remove_new(root: str, tops: tuple[str, ...], before: set[str], root_existed: bool) -> None:
    """Remove the topmost paths under `root/<top>` that are not in `before` (this attempt's)."""
    if not root_existed:
        shutil.rmtree(root, ignore_errors=True)
        return
    for rel in sorted(_snapshot(root, tops) - before, key=lambda p: p.count(os.sep)):
        path = os.path.join(root, rel)
        if not os.path.lexists(path):
            continue  # inside a directory removed already
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _reason(stdout, stderr) -> str:
    for stream in (stdout, stderr):
        stream.seek(0)
        lines = stream.read().decode("utf-8", "replace").strip().splitlines()
        marked = [line[len(_REASON_MARK):] for line in lines if line.startswith(_REASON_MARK)]
        if marked:
            return marked[-1][:300]
        if stream is stderr and lines:
            return lines[-1][:300]
    return "the download process ended without a reason"


def download_and_prepare(tfds_name: str, data_dir: str, manual_dir: str | None, timeout: float | None) -> None:
    """Download and prepare `tfds_name` into `data_dir` in a child process, within `timeout` s.

    Raises `DownloadFailed` (after removing what the attempt wrote) when the child fails or
    is stopped at the deadline; KeyboardInterrupt stops and cleans the same way.
    """
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    tops = ("downloads", tfds_name.split("/")[0].split(":")[0])
    root_existed = os.path.isdir(data_dir)
    before = _snapshot(data_dir, tops) if root_existed else set()
    command = [sys.executable, "-m", "nasnet_keras.data.download", tfds_name, data_dir, manual_dir or "",
               str(os.getpid())]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                   start_new_session=True)
        timed_out = False
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process)
        except BaseException:
            _kill_group(process)
            _remove_new(data_dir, tops, before, root_existed)
            raise
        if process.returncode == 0:
            return
        _remove_new(data_dir, tops, before, root_existed)
        if timed_out:
            raise DownloadFailed(f"did not finish within {timeout:g} s and was stopped", timed_out=True)
        raise DownloadFailed(_reason(stdout, stderr), timed_out=False)


def _exit_when_orphaned(parent: int) -> None:
    """A child whose parent died (kill -9) stops too, instead of downloading on unbounded."""
    while True:
        if os.getppid() != parent:
            os._exit(3)
        time.sleep(0.5)


def _child(argv: list[str]) -> int:
    tfds_name, data_dir, manual_dir, parent = argv
    threading.Thread(target=_exit_when_orphaned, args=(int(parent),), daemon=True).start()
    try:
        import tensorflow_datasets as tfds

        config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
        tfds.builder(tfds_name, data_dir=data_dir).download_and_prepare(download_config=config)
    except BaseException as error:  # the parent reports it; the traceback is in the child's stderr
        text = str(error).strip().splitlines()
        print(f"{_REASON_MARK}{type(error).__name__}: {text[0] if text else ''}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
