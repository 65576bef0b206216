"""oracle.json as snapshot + journal: what a reader or resume sees equals the oracle's own state, at O(1) per call."""

import json
import os
import random

import keras_tuner
import numpy as np
import pytest

from tuner import keras_tuner_internals as internals
from tuner import state_journal
from tuner.oracles import make_oracle
from tuner.space import SearchSpace

TrialStatus = keras_tuner.engine.trial.TrialStatus
STRATEGIES = {"ppo": {"batch_size": 4}, "random": {}, "evolution": {"population_size": 6, "sample_size": 3}}


def _oracle(strategy, directory, max_trials=60, **extra):
    oracle = make_oracle(strategy, SearchSpace(num_blocks=2), max_trials=max_trials, seed=3, max_retries_per_trial=1,
                         max_consecutive_failed_trials=50, **STRATEGIES[strategy], **extra)
    oracle.verbose = 0
    internals.set_project_dir(oracle, str(directory), "project")
    return oracle


def _comparable(state):
    state = json.loads(json.dumps(state))  # as written and read back (NaN survives as NaN)
    state.pop(state_journal.SEQ_KEY, None)
    state["tried_so_far"] = sorted(state["tried_so_far"])
    return json.dumps(state, sort_keys=True)


def _drive(oracle, steps, rng, check):
    """Random interleavings of several workers: create, heartbeat, complete / fail / crash (retried)."""
    running = {}
    for step in range(steps):
        worker = f"w{rng.randrange(4)}"
        if worker not in running:
            trial = oracle.create_trial(worker)
            if trial.status == TrialStatus.STOPPED:
                break
            if trial.status == TrialStatus.RUNNING:
                running[worker] = trial
        else:
            trial = running.pop(worker)
            outcome = rng.random()
            if outcome < 0.7:
                oracle.update_trial(trial.trial_id, {"val_accuracy": rng.random()}, step=0)
                trial.status = TrialStatus.COMPLETED
            elif outcome < 0.8:
                trial.status, trial.message = TrialStatus.FAILED, "injected failure"
            elif outcome < 0.9:
                oracle.update_trial(trial.trial_id, {"val_accuracy": float("nan")}, step=0)  # INVALID: retried
                trial.status = TrialStatus.COMPLETED
            else:
                trial.status, trial.message = TrialStatus.INVALID, "worker lost"  # re-queued for any worker
            oracle.end_trial(trial)
        check(step)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("journal_limit", [0, 10**9], ids=["compacting", "journal-only"])
def test_what_is_on_disk_is_the_oracle_state_after_every_call(tmp_path, monkeypatch, strategy, journal_limit):
    # A tiny limit compacts at almost every call past the first few; a huge one never does.
    monkeypatch.setattr(state_journal, "MIN_JOURNAL_BYTES", journal_limit)
    monkeypatch.setattr(state_journal, "JOURNAL_TO_SNAPSHOT", min(journal_limit, 1.0))
    oracle = _oracle(strategy, tmp_path)
    project = internals.project_dir(oracle)
    journal = state_journal.journal_path(project)
    sizes, saved = [], {}
    save = oracle.save

    def save_and_remember():  # what keras-tuner's own full rewrite of oracle.json would hold now
        save()
        saved["state"] = _comparable(oracle.get_state())

    oracle.save = save_and_remember

    def check(step):
        assert _comparable(state_journal.read_state(project)) == saved["state"], f"after call {step}"
        sizes.append(os.path.getsize(journal) if os.path.exists(journal) else 0)

    _drive(oracle, 100, random.Random(strategy), check)
    oracle.save()
    assert _comparable(state_journal.read_state(project)) == _comparable(oracle.get_state())
    assert len(oracle.end_order) > 12 and any(t.status == TrialStatus.FAILED for t in oracle.trials.values())
    if journal_limit > 1:
        assert max(sizes) > 0 and os.path.getsize(internals.oracle_file(oracle)) < max(sizes)  # lines, not rewrites
    # A new oracle resumes from the files with the same state.
    resumed = _oracle(strategy, tmp_path)
    resumed.reload()
    before, after = json.loads(_comparable(oracle.get_state())), json.loads(_comparable(resumed.get_state()))
    # keras-tuner's reload re-queues the trials that were running: the only intended difference.
    assert sorted(after.pop("retry_queue")) == sorted(before.pop("retry_queue") + list(before["ongoing_trials"].values()))
    before["ongoing_trials"], before["display"] = {}, after["display"]
    assert json.dumps(after, sort_keys=True) == json.dumps(before, sort_keys=True)
    assert os.path.getsize(journal) == 0  # the reload folded the journal into oracle.json
    assert not [name for name in os.listdir(project) if ".partial-" in name]


def test_bytes_written_per_call_do_not_grow_with_the_history(tmp_path, monkeypatch):
    monkeypatch.setattr(state_journal, "MIN_JOURNAL_BYTES", 10**9)
    oracle = _oracle("random", tmp_path, max_trials=300)
    journal = state_journal.journal_path(internals.project_dir(oracle))
    per_trial = []
    for i in range(300):
        before = os.path.getsize(journal) if os.path.exists(journal) else 0
        trial = oracle.create_trial("w0")
        oracle.update_trial(trial.trial_id, {"val_accuracy": i / 300})
        trial.status = TrialStatus.COMPLETED
        oracle.end_trial(trial)
        per_trial.append(os.path.getsize(journal) - before)
        if i == 0:
            first_snapshot = open(internals.oracle_file(oracle), "rb").read()
    early, late = np.median(per_trial[10:60]), np.median(per_trial[-50:])
    assert late <= 1.1 * early, (early, late)  # a full rewrite at trial 300 would be ~30x trial 10's
    assert open(internals.oracle_file(oracle), "rb").read() == first_snapshot  # never rewritten


def test_a_torn_last_line_is_ignored_and_a_damaged_middle_line_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(state_journal, "MIN_JOURNAL_BYTES", 10**9)
    oracle = _oracle("random", tmp_path)
    _drive(oracle, 30, random.Random(0), lambda step: None)
    oracle.save()  # random search settles its cache after keras-tuner's save: write that too
    project = internals.project_dir(oracle)
    journal = state_journal.journal_path(project)
    expected = _comparable(oracle.get_state())
    with open(journal, "ab") as f:
        f.write(b'{"seq": 999, "set": {"retry_que')  # a writer killed mid-write
    with pytest.warns(UserWarning, match="torn last line"):
        assert _comparable(state_journal.read_state(project)) == expected
    lines = open(journal, "rb").read().split(b"\n")
    lines[2] = b"not json"
    open(journal, "wb").write(b"\n".join(lines))
    with pytest.raises(ValueError, match=r"oracle\.journal\.jsonl: line 3 is not a journal entry"):
        state_journal.read_state(project)


def test_lines_already_in_the_snapshot_are_not_applied_twice(tmp_path, monkeypatch):
    """Killed after the snapshot was rewritten but before the journal was emptied."""
    monkeypatch.setattr(state_journal, "MIN_JOURNAL_BYTES", 10**9)
    oracle = _oracle("random", tmp_path)
    _drive(oracle, 30, random.Random(1), lambda step: None)
    oracle.save()
    project = internals.project_dir(oracle)
    journal = state_journal.journal_path(project)
    stale_lines = open(journal, "rb").read()
    state_journal.fold_journal(project)  # the snapshot now holds every line...
    open(journal, "wb").write(stale_lines)  # ...and the journal still has them
    assert _comparable(state_journal.read_state(project)) == _comparable(oracle.get_state())


def test_consecutive_failures_stop_the_search_as_keras_tuner_does(tmp_path):
    oracle = make_oracle("random", SearchSpace(num_blocks=1), max_trials=20, seed=0, max_consecutive_failed_trials=3)
    oracle.verbose = 0
    internals.set_project_dir(oracle, str(tmp_path), "project")
    statuses = ["FAILED", "FAILED", "COMPLETED", "FAILED", "FAILED"]
    for status in statuses:  # two runs of two failures: below the limit
        trial = oracle.create_trial("w0")
        if status == "COMPLETED":
            oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
        trial.status, trial.message = status, f"trial {trial.trial_id} broke"
        oracle.end_trial(trial)
    trial = oracle.create_trial("w0")
    trial.status, trial.message = "FAILED", "the third in a row"
    with pytest.raises(RuntimeError, match="exceeded the limit of 3.\nthe third in a row"):
        oracle.end_trial(trial)


class _CountingTrials(dict):
    reads = 0

    def __getitem__(self, key):
        type(self).reads += 1
        return super().__getitem__(key)


def test_the_failure_check_reads_the_current_run_not_the_history(tmp_path):
    # A limit as large as the search (the benchmarks' 10**6) must not make every end O(trials).
    oracle = make_oracle("random", SearchSpace(num_blocks=1), max_trials=60, seed=0,
                         max_consecutive_failed_trials=10**6)
    oracle.verbose = 0
    internals.set_project_dir(oracle, str(tmp_path), "project")
    for status in ["COMPLETED"] * 40 + ["FAILED"] * 3:
        trial = oracle.create_trial("w0")
        if status == "COMPLETED":
            oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
        trial.status = status
        oracle.end_trial(trial)
    oracle.trials = _CountingTrials(oracle.trials)
    _CountingTrials.reads = 0
    oracle._check_consecutive_failures()
    assert _CountingTrials.reads == 4  # the three failures and the completed trial before them


def test_trial_files_are_written_whole_with_keras_tuners_nan(tmp_path):
    oracle = _oracle("random", tmp_path)
    trial = oracle.create_trial("w0")
    oracle.update_trial(trial.trial_id, {"val_accuracy": float("nan")})
    trial.status = TrialStatus.COMPLETED
    oracle.end_trial(trial)
    path = os.path.join(internals.project_dir(oracle), f"trial_{trial.trial_id}", "trial.json")
    loaded = keras_tuner.engine.trial.Trial.load(path)
    assert loaded.status == TrialStatus.INVALID and np.isnan(loaded.score)
    assert os.listdir(os.path.dirname(path)) == ["trial.json"]  # no partial beside it
