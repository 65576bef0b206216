"""User faults versus bugs: what the `nasnet` command prints, and with which exit code.

A user who names a missing file, a read-only directory, a truncated weights file or a bad
`--set` value needs one line naming the file or value and what to do, not a traceback;
a bug in this package needs the traceback. `report` draws that line in one place, so
every sub-command (present and future, wherever its module lives) behaves the same:

* `ValueError` (this package's "bad argument" convention, including
  `DatasetNotFoundError`) and the whole `OSError` family (missing, unreadable, read-only,
  full, a file where a directory is expected and the reverse) are user faults: exit 2;
* `RunFailed` is a run that started correctly and could not finish (a diverged training
  run): exit 1, with the reason;
* anything else is a bug and keeps its traceback (exit 1 through Python's default).

`--debug` or the environment variable `NASNET_DEBUG=1` prints the traceback of a user fault
too (`main` re-raises it).
"""

from __future__ import annotations

import errno
import os

DEBUG_ENV = "NASNET_DEBUG"
USAGE_EXIT = 2  # argparse's code for a usage error: the user can fix it by changing the command
FAILED_EXIT = 1

__all__ = ["DEBUG_ENV", "RunFailed", "debug_requested", "is_user_fault", "one_line", "exit_code"]


class RunFailed(RuntimeError):
    """A run that was set up correctly but could not finish (e.g. the loss diverged).

    The message says why and what was kept; the command exits with status 1.
    """

    exit_code = FAILED_EXIT


# What to do about an OSError, by errno; the message names the path itself.
_OS_HINTS = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check its permissions or choose another location",
    errno.EPERM: "check its permissions and attributes (chattr) or choose another location",
    errno.EROFS: "the file system is read-only; choose another location",
    errno.ENOSPC: "the disk is full; free some space and run the same command again",
    errno.EDQUOT: "the disk quota is exhausted; free some space and run the same command again",
    errno.ENOTDIR: "a part of the path is a file, not a directory; choose another path",
    errno.EISDIR: "it is a directory, a file was expected; name the file inside it",
    errno.EEXIST: "it already exists; remove it or choose another path",
    errno.ENAMETOOLONG: "shorten the path",
}


def debug_requested(flag: bool = False) -> bool:
    return bool(flag) or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def is_user_fault(error: BaseException) -> bool:
    return isinstance(error, (ValueError, OSError, RunFailed))


def exit_code(error: BaseException) -> int:
    return int(getattr(error, "exit_code", USAGE_EXIT))


def _os_line(error: OSError) -> str:
    reason = error.strerror or str(error) or type(error).__name__
    names = [n for n in (error.filename, getattr(error, "filename2", None)) if n is not None]
    where = " -> ".join(repr(os.fspath(n)) for n in names)
    hint = _OS_HINTS.get(error.errno)
    line = f"{where}: {reason}" if where else reason
    return f"{line} ({hint})" if hint else line


def one_line(error: BaseException) -> str:
    """The message of a user fault, for the command line.

    OSErrors become `'PATH': reason (what to do)`. A ValueError's message is this
    package's own (it names the value and what is accepted); a multi-line one (the routes
    a dataset was looked for) is kept whole, as its first line already says what failed.
    """
    if isinstance(error, OSError) and not isinstance(error, ValueError) and (error.strerror or error.filename):
        return _os_line(error)
    text = str(error).strip() or type(error).__name__
    if isinstance(error, OSError) and not isinstance(error, ValueError):
        text = f"{text.splitlines()[0]} (an unreadable or corrupt file)"
    return text
