"""One chief per search directory: a lock that only a live chief holds.

Two chiefs on one directory would hand out the same trial ids and overwrite each other's
`oracle.json`. The lock is `fcntl.flock` on `<directory>/.<project>.chief.lock` (beside the
project, so `--overwrite` cannot delete it under a live chief): the kernel releases it
when the holder dies however it dies, so a stale lock of a killed chief needs no cleanup
and the next chief simply takes it. The file records who holds it (pid, host, address,
time) for the error message. flock is per host on network file systems that emulate it
(NFS): start the chief of a directory on one machine.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time


class ChiefLock:
    def __init__(self, directory: str, project_name: str):
        self.path = os.path.join(str(directory), f".{project_name}.chief.lock")
        self._file = None

    def acquire(self, address: str) -> "ChiefLock":
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read() or "{}")
            except json.JSONDecodeError:
                holder = {}
            handle.close()
            raise ValueError(
                f"{os.path.dirname(os.path.abspath(self.path))} is already served by a live chief (pid "
                f"{holder.get('pid', '?')} on {holder.get('host', '?')}, address {holder.get('address', '?')}, since "
                f"{holder.get('since', '?')}). One chief per search directory: stop that one, or use another "
                f"--directory. Received: lock {self.path}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "address": address,
                                 "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
