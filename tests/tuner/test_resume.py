"""A killed PPO search resumes where it stopped: same controller, no trial lost or repeated."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tuner import keras_tuner_internals as internals
from tuner.oracles import WEIGHTS_FILE, make_oracle
from tuner.space import SearchSpace
from tuner.state_journal import StateJournalMixin

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def load_helper():
    spec = importlib.util.spec_from_file_location("resume_search", os.path.join(HERE, "resume_search.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kill_after(directory, max_trials, k, timeout=300):
    """Run the search in a child process and SIGKILL it in the middle of trial k."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, os.path.join(HERE, "resume_search.py"), str(directory),
               "--max-trials", str(max_trials), "--kill-after", str(k)]
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killpoint = os.path.join(directory, "search", "killpoint.npz")
    deadline = time.time() + timeout
    while not os.path.exists(killpoint):
        if child.poll() is not None or time.time() > deadline:
            child.kill()
            pytest.fail(f"the child search never reached trial {k}:\n{child.communicate()[0].decode()[-3000:]}")
        time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with np.load(killpoint) as data:
        return {name: data[name] for name in data.files}


@pytest.mark.slow
def test_killed_search_resumes_with_the_same_controller_and_no_lost_or_repeated_trial(tmp_path):
    helper = load_helper()
    max_trials, k = 24, 12  # batch 5: killed after 2 PPO updates, 2 rewards buffered
    at_kill = kill_after(tmp_path / "killed", max_trials, k)

    tuner = helper.make_tuner(str(tmp_path / "killed"), max_trials)  # overwrite=False: reload
    oracle = tuner.oracle
    for i, weight in enumerate(oracle.controller.get_weights()):
        np.testing.assert_array_equal(weight, at_kill[f"controller/{i}"])
    for i, weight in enumerate(oracle.ppo.optimizer.get_weights()):
        np.testing.assert_array_equal(weight, at_kill[f"optimizer/{i}"])
    assert oracle.ppo.get_state() == json.loads(str(at_kill["ppo"]))
    assert oracle.ppo.num_updates == 2 and len(oracle.ppo.buffer) == 2
    assert len(oracle.end_order) == k and internals.retry_queue(oracle) == [str(k)]  # the interrupted trial

    tuner.search(verbose=0)
    with open(tmp_path / "killed" / "search" / "runs.log") as f:
        runs = f.read().split()
    assert sorted(runs) == [f"{i:02d}" for i in range(max_trials)]  # each trial ran to the end once
    assert sorted(oracle.end_order) == sorted(runs) and oracle.pending == {}
    assert oracle.ppo.num_rewards == max_trials and oracle.ppo.num_updates == max_trials // 5

    # The resumed search is the uninterrupted one: same architectures, same final controller.
    reference = helper.make_tuner(str(tmp_path / "reference"), max_trials)
    reference.search(verbose=0)
    for trial_id in runs:
        assert (oracle.trials[trial_id].hyperparameters.values
                == reference.oracle.trials[trial_id].hyperparameters.values)
    for mine, theirs in zip(oracle.controller.get_weights(), reference.oracle.controller.get_weights()):
        np.testing.assert_allclose(mine, theirs, atol=1e-6)


# --- the two windows a kill can hit inside end_trial (in-process, by raising instead) ----
SMALL = SearchSpace(num_blocks=1)


class Killed(Exception):
    pass


def fresh(directory, **kwargs):
    oracle = make_oracle("ppo", SMALL, seed=3, batch_size=3, learning_rate=0.01, epochs=1, **kwargs)
    internals.set_project_dir(oracle, str(directory), "search")
    oracle.verbose = 0
    return oracle


def finish(oracle, score=0.5):
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"val_accuracy": score})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    return trial


def test_kill_after_the_trial_end_was_saved_but_before_ppo_saw_the_reward(tmp_path, monkeypatch):
    oracle = fresh(tmp_path)
    for score in (0.1, 0.2, 0.3, 0.4):
        finish(oracle, score)
    monkeypatch.setattr(oracle, "_settle", lambda trial: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        finish(oracle, 0.9)  # trial 4: keras-tuner saved its end, PPO never got 0.9

    resumed = fresh(tmp_path)
    resumed.reload()
    assert resumed.ppo.num_rewards == 5 and resumed.ppo.buffer[-1]["reward"] == 0.9
    assert internals.retry_queue(resumed) == [] and resumed.pending == {}  # not re-run, not lost
    for mine, theirs in zip(resumed.controller.get_weights(), oracle.controller.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert finish(resumed).trial_id == "00005"


def test_kill_after_the_weights_file_but_before_oracle_json(tmp_path, monkeypatch):
    oracle = fresh(tmp_path)
    finish(oracle, 0.1)
    finish(oracle, 0.2)
    base_save = StateJournalMixin.save  # what writes oracle.json (snapshot + journal)

    def dying_save(self):
        if self is oracle and oracle.ppo.num_updates == 1:
            raise Killed()  # the update's weights are on disk, oracle.json is not
        base_save(self)

    monkeypatch.setattr(StateJournalMixin, "save", dying_save)
    with pytest.raises(Killed):
        finish(oracle, 0.3)  # the 3rd reward triggers the update
    monkeypatch.setattr(StateJournalMixin, "save", base_save)

    resumed = fresh(tmp_path)
    resumed.reload()
    assert resumed.ppo.num_updates == 1 and resumed.ppo.num_rewards == 3 and resumed.ppo.buffer == []
    assert internals.retry_queue(resumed) == [] and resumed.pending == {}
    for mine, theirs in zip(resumed.controller.get_weights(), oracle.controller.get_weights()):
        np.testing.assert_array_equal(mine, theirs)  # the post-update controller
    finish(resumed)
    assert resumed.ppo.num_rewards == 4


def test_missing_weights_file_is_an_error_not_a_fresh_controller(tmp_path):
    oracle = fresh(tmp_path)
    finish(oracle)
    os.remove(os.path.join(internals.project_dir(oracle), WEIGHTS_FILE))
    with pytest.raises(FileNotFoundError, match=WEIGHTS_FILE):
        fresh(tmp_path).reload()
