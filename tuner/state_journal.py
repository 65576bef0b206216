"""An oracle's state on disk at a cost per call that does not grow with the search.

keras-tuner's `Oracle` rewrites its whole state to `oracle.json` on every `create_trial`
and `end_trial`, and that state holds fields that grow by an entry per trial (the start
and end order, the run counts, the value hashes, the display's start times, our reward
cache). A distributed chief's time per trial therefore grew with the history: 9.6 ms at
trial 100 and 66 ms at trial 5,000, most of it `json.dumps` of the whole state three
times per trial; at the paper's 20,000 children it would be hundreds of milliseconds.

`StateJournalMixin` (first in an oracle's bases) keeps keras-tuner's file and format as a
**snapshot** and appends what each `save()` changed as one line of
`oracle.journal.jsonl` beside it:

* a growing field (`GROWING`): only its new entries (and, for the run counts and hashes,
  the entries of the trials that were running, re-queued or just ended, the only ones
  keras-tuner changes);
* any other field: its new value, only when it changed.

When the journal has grown as large as the snapshot (at least `MIN_JOURNAL_BYTES`), the
snapshot is rewritten whole and the journal emptied (compaction), so the bytes written per
call are constant on average and a reader never reads more than about twice the state.
Anything the rules above do not expect (a list that shrank, a set that grew by something
else) falls back to a compaction: correct, just slower once.

Crash safety. The snapshot records the sequence number of the last journal line it
contains (`SEQ_KEY`); it is written atomically before the journal is emptied, so a kill
between the two only leaves lines that the next reader skips. Each line is written with a
single `write` on an append-only descriptor; a process killed during that write can leave
a torn last line, which belongs to a call that never returned and is ignored (with a
warning). A damaged line before the last is an error naming the file and line.

Reading. `read_state(project_dir)` is the state a reader or a resume must use (snapshot
plus journal). `reload()` folds the journal into the snapshot first, so keras-tuner's own
reload, and every oracle's `set_state`, read a complete `oracle.json` as before.

The mixin also writes each `trial.json` atomically with plain file I/O (keras-tuner writes
it in place through `tf.io.gfile`: ~2 ms per write here, and a kill in the middle leaves a
half-written file that a resume cannot read), and checks consecutive failures from the end
of the history instead of scanning all of it on every `end_trial`.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import warnings
from typing import Any, Iterable

from nasnet_keras.fileio import write_json, write_text
from tuner import keras_tuner_internals as internals

JOURNAL_FILE = "oracle.journal.jsonl"
SEQ_KEY = "state_journal_seq"
# Compact when the journal is larger than both of these (bytes; a fraction of the snapshot).
MIN_JOURNAL_BYTES = 1 << 20
JOURNAL_TO_SNAPSHOT = 1.0

# State fields (dotted paths into `get_state()`) that grow by about one entry per trial, and
# their kind: "list" grows at the end, "dict" gains keys at the end (insertion order) and
# changes values only of the trials in `_changing_trials`, "set" (a list in the state) gains
# the hashes of those trials.
GROWING = {
    "start_order": "list",
    "end_order": "list",
    "run_times": "dict",
    "id_to_hash": "dict",
    "tried_so_far": "set",
    "display.trial_start": "dict",
    "display.trial_number": "dict",
    "reward_cache.rewards": "dict",
}
_CONTAINERS = {path.split(".")[0] for path in GROWING if "." in path}


class _NeedsSnapshot(Exception):
    """The journal cannot describe this change: rewrite the snapshot."""


def _set_as_list(value):
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def journal_path(project_dir: str) -> str:
    return os.path.join(project_dir, JOURNAL_FILE)


def _split(state: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    """(small fields, growing fields), both keyed by dotted path."""
    small, growing = {}, {}
    for key, value in state.items():
        if key in GROWING:
            growing[key] = value
        elif key in _CONTAINERS and isinstance(value, dict):
            for sub, sub_value in value.items():
                path = f"{key}.{sub}"
                (growing if path in GROWING else small)[path] = sub_value
        else:
            small[key] = value
    return small, growing


def _put(state: dict, path: str, value) -> None:
    head, _, tail = path.partition(".")
    if tail:
        state.setdefault(head, {})[tail] = value
    else:
        state[head] = value


def _get(state: dict, path: str, default=None):
    head, _, tail = path.partition(".")
    if tail:
        return state.get(head, {}).get(tail, default)
    return state.get(head, default)


def _drop(state: dict, path: str) -> None:
    head, _, tail = path.partition(".")
    (state.get(head, {}) if tail else state).pop(tail or head, None)


def apply_line(state: dict, line: dict) -> None:
    """Apply one journal line to a full state, in place (the state is the caller's own copy)."""
    for path, value in line.get("set", {}).items():
        _put(state, path, value)
    for path in line.get("del", []):
        _drop(state, path)
    for path, delta in line.get("add", {}).items():
        current = _get(state, path)
        if current is None:
            _put(state, path, {} if GROWING[path] == "dict" else [])
            current = _get(state, path)
        # In place: a replay of many lines stays linear in the journal, not lines x entries.
        if GROWING[path] == "dict":
            current.update(delta)
        else:  # list, or a set kept as a list
            current.extend(delta)


def _journal_lines(path: str, after: int) -> list[dict]:
    """The journal's lines with a sequence number above `after` (a torn last line is dropped)."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        raw = f.read().split(b"\n")
    complete, torn = raw[:-1], raw[-1]
    if torn.strip():
        warnings.warn(f"{path}: ignoring a torn last line ({len(torn)} bytes) left by a writer killed mid-write; "
                      "it belongs to a call that never returned", stacklevel=3)
    lines = []
    for number, text in enumerate(complete, 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            seq = int(line["seq"])
        except (ValueError, KeyError, TypeError) as error:
            if number == len(complete) and not torn.strip():
                warnings.warn(f"{path}: ignoring a damaged last line {number} ({error})", stacklevel=3)
                break
            raise ValueError(f"{path}: line {number} is not a journal entry ({error}); the oracle state cannot be "
                             "read past it. Restore the project from a backup, or start a new one") from error
        if seq > after:
            lines.append(line)
    return lines


def read_state(project_dir: str) -> dict:
    """The oracle state of a project as a resume would see it: `oracle.json` plus the journal."""
    snapshot_path = os.path.join(project_dir, "oracle.json")
    with open(snapshot_path, encoding="utf-8") as f:
        state = json.load(f)
    for line in _journal_lines(journal_path(project_dir), int(state.get(SEQ_KEY, 0))):
        apply_line(state, line)
        state[SEQ_KEY] = int(line["seq"])
    return state


def fold_journal(project_dir: str) -> None:
    """Write snapshot + journal as one `oracle.json`, then empty the journal (before a reload)."""
    path = journal_path(project_dir)
    snapshot_path = os.path.join(project_dir, "oracle.json")
    if not os.path.exists(path) or not os.path.exists(snapshot_path):
        return
    write_text(snapshot_path, json.dumps(read_state(project_dir)))
    open(path, "wb").close()


class StateJournalMixin:
    """Put first in a `keras_tuner.Oracle` subclass's bases: O(1) state writes (see the module)."""

    def __init__(self, *args, **kwargs):
        self._journal_reset()
        super().__init__(*args, **kwargs)

    def _journal_reset(self) -> None:
        self._journal_seq = 0
        self._snapshot_bytes = 0
        self._journal_bytes = 0
        self._persisted: dict[str, Any] | None = None  # what the files hold, to diff against

    # --- keras-tuner's hooks -------------------------------------------------------------
    def save(self):
        project_dir = internals.project_dir(self)
        state = internals.state_sharing_tried_hashes(self)
        try:
            if self._persisted is None or self._journal_bytes > max(MIN_JOURNAL_BYTES,
                                                                       JOURNAL_TO_SNAPSHOT * self._snapshot_bytes):
                raise _NeedsSnapshot()
            line = self._diff(state)
        except _NeedsSnapshot:
            self._write_snapshot(project_dir, state)
            return
        if line:
            self._journal_seq += 1
            data = (json.dumps({"seq": self._journal_seq, **line}) + "\n").encode()
            fd = os.open(journal_path(project_dir), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            self._journal_bytes += len(data)

    def reload(self):
        fold_journal(internals.project_dir(self))
        self._journal_reset()
        super().reload()
        # The next save writes a fresh snapshot (what was read, plus whatever reload repaired).

    def _save_trial(self, trial):
        path = os.path.join(internals.trial_dir(self, trial.trial_id), "trial.json")
        # Atomic against a killed process (rename), not synced to the disk: a trial's file is
        # rewritten at every heartbeat, and a machine that loses power loses its workers too.
        write_json(path, trial.get_state(), indent=None, allow_nan=True, durable=False)

    def _check_consecutive_failures(self):
        # keras-tuner scans the whole end order on every end_trial; only the newest run of
        # failures can newly reach the limit (an older one would have raised when it did).
        # The scan walks back from the newest end and stops at the first trial that did not
        # fail, so it costs the length of the current run of failures, not of the history
        # (a limit as large as the search, as the benchmarks set, made it O(trials)).
        limit = self.max_consecutive_failed_trials
        if not limit:
            return
        newest = None
        for count, trial_id in enumerate(reversed(self.end_order), start=1):
            trial = self.trials[trial_id]
            if trial.status != "FAILED":
                return
            if newest is None:
                newest = trial
            if count >= limit:
                raise RuntimeError(f"Number of consecutive failures exceeded the limit of {limit}.\n"
                                   + (newest.message or ""))

    # --- the journal -----------------------------------------------------------------------
    def _write_snapshot(self, project_dir: str, state: dict) -> None:
        # keras-tuner's format (NaN allowed); the shared set of tried hashes is written as its list
        text = json.dumps({**state, SEQ_KEY: self._journal_seq}, default=_set_as_list)
        write_text(internals.oracle_file(self), text)
        open(journal_path(project_dir), "wb").close()
        self._snapshot_bytes, self._journal_bytes = len(text), 0
        small, growing = _split(state)
        self._persisted = {
            "small": {path: copy.deepcopy(value) for path, value in small.items()},
            "growing": {path: self._shadow(GROWING[path], value) for path, value in growing.items()},
            "changing": set(self._changing_trials()),
        }

    @staticmethod
    def _shadow(kind: str, value):
        if kind == "list":
            return {"length": len(value), "last": value[-1] if value else None}
        if kind == "dict":
            return dict(value)
        return set(value)

    def _changing_trials(self) -> Iterable[str]:
        """Trials whose entries keras-tuner may change in place: running or queued for a re-run."""
        yield from (trial.trial_id for trial in self.ongoing_trials.values())
        yield from internals.retry_queue(self)

    def _diff(self, state: dict) -> dict:
        persisted = self._persisted
        small, growing = _split(state)
        line: dict[str, Any] = {}
        changed = {}
        for path, value in small.items():
            # Compared by value, not as JSON text: the space's config (12 KB at B=5) is in
            # every save and rarely changes, and encoding every field on every save was most
            # of the journal's cost. (A NaN never equals itself: such a field is simply
            # written again.)
            if path not in persisted["small"] or persisted["small"][path] != value:
                changed[path] = value
        removed = [path for path in persisted["small"] if path not in small]
        if set(growing) != set(persisted["growing"]):
            raise _NeedsSnapshot()
        changing = set(self._changing_trials())
        touched = changing | persisted["changing"]
        additions = {}
        pending_shadow = {}
        for kind in ("list", "dict", "set"):  # lists first: their new entries are touched trials
            for path, value in growing.items():
                if GROWING[path] != kind:
                    continue
                delta, shadow = self._grow(kind, value, persisted["growing"][path], touched, state)
                if delta:
                    additions[path] = delta
                    pending_shadow[path] = shadow
                if kind == "list":
                    touched.update(str(t) for t in delta)
        # Everything is known: commit the new persisted view with the line.
        for path, value in changed.items():
            persisted["small"][path] = copy.deepcopy(value)
        for path in removed:
            del persisted["small"][path]
        persisted["growing"].update(pending_shadow)
        persisted["changing"] = changing
        if changed:
            line["set"] = changed
        if removed:
            line["del"] = removed
        if additions:
            line["add"] = additions
        return line

    def _grow(self, kind, value, shadow, touched, state):
        """(new entries, the shadow after them) of one growing field, or _NeedsSnapshot."""
        if kind == "list":
            length = shadow["length"]
            if len(value) < length or (length and value[length - 1] != shadow["last"]):
                raise _NeedsSnapshot()
            delta = list(value[length:])
            return delta, {"length": len(value), "last": value[-1] if value else None}
        if kind == "dict":
            if len(value) < len(shadow):
                raise _NeedsSnapshot()
            new_keys = list(itertools.islice(reversed(value), len(value) - len(shadow)))
            delta = {key: value[key] for key in reversed(new_keys)}
            if any(key in shadow for key in delta):
                raise _NeedsSnapshot()
            for key in touched:
                if key in value and key in shadow and shadow[key] != value[key]:
                    delta[key] = value[key]
            shadow.update(delta)  # the shadow dict is updated in place (O(changes))
            return delta, shadow
        # A set (stored as a list): the hashes of the touched trials are the only additions.
        hashes = _get(state, "id_to_hash", {})
        delta = sorted({hashes[t] for t in touched if hashes.get(t) is not None} - shadow)
        if len(value) != len(shadow) + len(delta):
            raise _NeedsSnapshot()
        shadow.update(delta)
        return delta, shadow
