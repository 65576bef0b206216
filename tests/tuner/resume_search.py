"""A keras-tuner search with fake rewards, run as a child process by test_resume.py.

`python resume_search.py DIRECTORY --max-trials N [--kill-after K]` searches with a
`PPOOracle` and a minimal `keras_tuner.Tuner` whose `run_trial` returns a synthetic
score (no model is trained). With `--kill-after K`, once K trials have ended it writes
the controller and PPO state it holds in memory to `DIRECTORY/killpoint.npz` and waits
for the parent to SIGKILL it in the middle of trial K.

Every `run_trial` that returns appends its trial id to `DIRECTORY/runs.log`, so the parent
can check that no trial ran twice and none was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import keras_tuner  # noqa: E402
import numpy as np  # noqa: E402

from tuner.oracles import PPOOracle  # noqa: E402
from tuner.space import SearchSpace  # noqa: E402

SPACE = SearchSpace(num_blocks=2)
TARGET = np.random.default_rng(0).integers(0, np.array(SPACE.sizes))
SEED, BATCH_SIZE = 7, 5


def reward(values) -> float:
    return float(np.mean(np.array(SPACE.to_indices(values)) == TARGET))


class FakeTuner(keras_tuner.Tuner):
    def __init__(self, *args, kill_after: int | None = None, **kwargs):
        self.kill_after = kill_after
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        if self.kill_after is not None and len(self.oracle.end_order) == self.kill_after:
            self._wait_for_kill()
        score = reward(trial.hyperparameters.values)
        with open(os.path.join(self.project_dir, "runs.log"), "a") as f:
            f.write(f"{trial.trial_id}\n")
        return {"val_accuracy": score}

    def _wait_for_kill(self):
        oracle = self.oracle
        arrays = {f"controller/{i}": w for i, w in enumerate(oracle.controller.get_weights())}
        arrays.update({f"optimizer/{i}": w for i, w in enumerate(oracle.ppo.optimizer.get_weights())})
        arrays["ppo"] = np.array(json.dumps(oracle.ppo.get_state()))
        tmp = os.path.join(self.project_dir, "killpoint.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, os.path.join(self.project_dir, "killpoint.npz"))
        while True:  # the parent kills us here, in the middle of a trial
            time.sleep(1)


def make_tuner(directory: str, max_trials: int, kill_after: int | None = None) -> FakeTuner:
    oracle = PPOOracle(SPACE, max_trials=max_trials, seed=SEED, batch_size=BATCH_SIZE, learning_rate=0.01, epochs=2)
    return FakeTuner(oracle=oracle, directory=directory, project_name="search", overwrite=False,
                     kill_after=kill_after)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--max-trials", type=int, required=True)
    parser.add_argument("--kill-after", type=int, default=None)
    args = parser.parse_args(argv)
    make_tuner(args.directory, args.max_trials, args.kill_after).search(verbose=0)


if __name__ == "__main__":
    main()
