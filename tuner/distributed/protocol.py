"""What the chief and its workers agree on beyond keras-tuner's own gRPC service.

keras-tuner's `Oracle` service (CreateTrial, UpdateTrial, EndTrial, ...) is used
unchanged. Everything our workers add travels in gRPC metadata on those same calls, plus a
small side service on the same server (`nasnet.search.Chief`, JSON messages) for what the
keras-tuner service has no method for:

    Hello       sent once by a worker before its first trial: its id, session and full
                search settings; the chief refuses other settings, naming the difference
    Heartbeat   sent by a worker every `heartbeat_interval` s while it runs a trial, so
                the chief can tell a slow trial from a dead worker
    Stats       the chief's counters and per-trial overhead (monitoring and benchmarks)

Metadata on every call (keys are lower-case, gRPC's rule):

    nasnet-tuner-id            the worker's KERASTUNER_TUNER_ID
    nasnet-session             random per worker process (two live processes with one id
                               are refused)
    nasnet-settings            digest of the search settings (a call of another search is
                               refused even without Hello)
    nasnet-trial-message-bin   on EndTrial: the trial's failure message, which keras-tuner's
                               Trial proto drops (UTF-8, last `MAX_MESSAGE_BYTES`)
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

TUNER_ID_KEY = "nasnet-tuner-id"
SESSION_KEY = "nasnet-session"
SETTINGS_KEY = "nasnet-settings"
MESSAGE_KEY = "nasnet-trial-message-bin"
MAX_MESSAGE_BYTES = 4000

SIDE_SERVICE = "nasnet.search.Chief"
HELLO = f"/{SIDE_SERVICE}/Hello"
HEARTBEAT = f"/{SIDE_SERVICE}/Heartbeat"
STATS = f"/{SIDE_SERVICE}/Stats"

LEASE_LOST = "is no longer leased to"  # in the chief's refusal of a late result

# Defaults (seconds). A trial's holder must be heard from within the lease; workers
# heartbeat four times per lease, so one or two lost heartbeats do not cost a trial.
DEFAULT_LEASE_TIMEOUT = 120.0
DEFAULT_CHIEF_TIMEOUT = 600.0


def encode(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, allow_nan=False).encode("utf-8")


def decode(data: bytes) -> Any:
    return json.loads(data.decode("utf-8")) if data else {}


def settings_digest(settings: Mapping[str, Any]) -> str:
    """A short stable digest of a search's settings (space, child recipe, strategy, run)."""
    return hashlib.sha256(encode(settings)).hexdigest()[:16]


def settings_differences(expected: Mapping[str, Any], received: Mapping[str, Any], prefix: str = "") -> list[str]:
    """'key: chief X, worker Y' for every leaf that differs between two settings trees."""
    differences = []
    for key in sorted(set(expected) | set(received)):
        a, b = expected.get(key), received.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            differences += settings_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            differences.append(f"{prefix}{key}: chief {a!r}, worker {b!r}")
    return differences


def metadata_value(context_or_pairs, key: str):
    """The value of `key` in a server context's invocation metadata (None if absent)."""
    pairs = context_or_pairs.invocation_metadata() if hasattr(context_or_pairs, "invocation_metadata") \
        else context_or_pairs
    for item in pairs or ():
        if item[0] == key:
            return item[1]
    return None


def __getattr__(name):  # the errors need keras-tuner; importing the constants must not
    if name in ("ChiefUnavailableError", "ChiefRefusedError", "LeaseLostError"):
        from tuner.distributed import chief_errors

        return getattr(chief_errors, name)
    raise AttributeError(name)
