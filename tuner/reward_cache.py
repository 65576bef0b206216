"""No child is trained twice: rewards of known architectures, kept in the oracle's state.

A strategy samples repeats: PPO's policy concentrates, evolution's mutations revisit, and
two decision lists can describe one architecture (NASNet: an `add` block with its two
terms swapped, `SearchSpace.architecture_key`; NAS-Bench-Graph: isomorphic cells). Training a repeat again costs a child's full
training for a reward that is already known. `RewardCacheMixin` sits between keras-tuner's
`create_trial` and a strategy's own proposal (`_propose`):

* a proposal whose architecture already has a reward **under the same child recipe** is
  not handed to a worker: the strategy gets the reward at once (`_feed_cached`; PPO still
  sees the sample, on-policy, with its own sampling-time log-probability) and proposes
  again, up to `MAX_CACHED_PROPOSALS` times in a row (then the search has converged onto
  what it knows, and STOPS; IDLE instead if some of those were children still training);
* a proposal of an architecture another worker is training right now waits for that
  trial's reward instead of training a copy;
* so `max_trials` counts trained children, and the number of cached rewards is
  `num_cache_hits` (in the search summary).

Key: `architecture key @ recipe`. The architecture key is the space's id of the point
(`tuner.categorical.architecture_key`: the genotype id for NASNet); the recipe is a
fingerprint of the project's `nas_search.json` (search space, child recipe and data,
`recipe_fingerprint`), set by `NASTuner` before keras-tuner can start serving the
oracle. The cache is part of the oracle's state (`oracle.json`): the chief holds it for
every worker of a distributed search, and a resumed search continues with it.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Mapping

import keras_tuner

from tuner import keras_tuner_internals as internals
from tuner.categorical import architecture_key

TrialStatus = keras_tuner.engine.trial.TrialStatus

CACHE_KEY = "reward_cache"
MAX_CACHED_PROPOSALS = 500


def recipe_fingerprint(search_config: Mapping[str, Any]) -> str:
    """A short hash of what decides a child's reward in `nas_search.json`.

    The strategy and the execution mode (`run_eagerly`) do not change a reward, so they
    are left out: everything else (space, child recipe, data) is in.
    """
    config = {k: v for k, v in search_config.items() if k != "strategy"}
    if isinstance(config.get("child_config"), Mapping):
        config["child_config"] = {k: v for k, v in config["child_config"].items() if k != "run_eagerly"}
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


class RewardCacheMixin:
    """Put before a keras-tuner Oracle in the bases; the oracle implements

    * `_propose(trial_id)` -> keras-tuner's populate_space answer, recording whatever
      it needs about the sample under `trial_id`;
    * `_detach_sample(trial_id)` -> that record (JSON-able), forgetting it for the trial;
    * `_feed_cached(record, score)` -> give the strategy the known score of a record
      (a cached one, or, through `_settle`, the score of the trial that was trained for it).
    """

    def __init__(self, *args, **kwargs):
        self._cache_init()
        super().__init__(*args, **kwargs)

    def _cache_init(self) -> None:
        self.recipe = ""
        self.cached_rewards: dict[str, float] = {}
        self.in_flight: dict[str, str] = {}  # trial id -> cache key of a child being trained
        self.waiting: dict[str, list] = {}  # cache key -> records waiting for that child's reward
        self.num_cache_hits = 0

    def set_recipe(self, fingerprint: str) -> None:
        """Which child recipe this oracle's rewards belong to (see `recipe_fingerprint`)."""
        self.recipe = str(fingerprint)

    def _cache_key(self, values: Mapping[str, Any]) -> str:
        return f"{architecture_key(self.search_space, values)}@{self.recipe}"

    @property
    def num_trained(self) -> int:
        return len(self.trials)

    def populate_space(self, trial_id):
        waited = False
        for _ in range(MAX_CACHED_PROPOSALS):
            response = self._propose(trial_id)
            if response["status"] != TrialStatus.RUNNING:
                return response
            key = self._cache_key(response["values"])
            if key in self.cached_rewards:
                self.num_cache_hits += 1
                self._feed_cached(self._detach_sample(trial_id), self.cached_rewards[key])
            elif key in self.in_flight.values():
                self.num_cache_hits += 1
                self.waiting.setdefault(key, []).append(self._detach_sample(trial_id))
                waited = True
            else:
                self.in_flight[trial_id] = key
                return response
        # Only repeats: of children still training (their rewards will change the strategy:
        # ask again later) or only of known ones (the search has converged: stop).
        return {"status": TrialStatus.IDLE if waited else TrialStatus.STOPPED, "values": None}

    def _settle(self, trial) -> None:
        """Give a finished trial's reward to the strategy, or drop its sample; keep it if it will be retried.

        For strategies that keep a sample record per running trial in `self.pending`
        (PPO: indices and sampling-time log-probability; evolution: indices) and count
        dropped ones in `self.num_skipped`; they call this after keras-tuner's end_trial.
        A trained reward reaches the strategy through `_feed_cached`, as a cached one does.
        """
        record = self.pending.get(trial.trial_id)
        if record is None:
            return
        if trial.status == TrialStatus.COMPLETED and trial.score is not None and math.isfinite(trial.score):
            del self.pending[trial.trial_id]
            self._feed_cached(record, float(trial.score))
        elif trial.status in (TrialStatus.FAILED, TrialStatus.COMPLETED):
            del self.pending[trial.trial_id]
            self.num_skipped += 1
        # INVALID (queued for retry) or RUNNING: keep the record for when it ends.

    def _settle_cache(self, trial) -> None:
        key = self.in_flight.get(trial.trial_id)
        if key is None or trial.status not in (TrialStatus.COMPLETED, TrialStatus.FAILED):
            return  # unknown, still running, or INVALID and queued for a retry
        del self.in_flight[trial.trial_id]
        waiting = self.waiting.pop(key, [])
        if trial.status == TrialStatus.COMPLETED and trial.score is not None and math.isfinite(trial.score):
            self.cached_rewards[key] = float(trial.score)
            for record in waiting:
                self._feed_cached(record, float(trial.score))
        # A FAILED child gives its waiting repeats no reward, as it gives the strategy none.

    @keras_tuner.synchronized
    def end_trial(self, trial):
        super().end_trial(trial)
        self._settle_cache(self.trials[trial.trial_id])

    def get_state(self):
        state = super().get_state()
        state[CACHE_KEY] = {
            "rewards": self.cached_rewards, "in_flight": self.in_flight,
            "waiting": self.waiting, "num_cache_hits": self.num_cache_hits,
        }
        return state

    def set_state(self, state):
        super().set_state(state)
        cache = state.get(CACHE_KEY, {})
        self.cached_rewards = {str(k): float(v) for k, v in cache.get("rewards", {}).items()}
        self.in_flight = {str(k): str(v) for k, v in cache.get("in_flight", {}).items()}
        self.waiting = {str(k): list(v) for k, v in cache.get("waiting", {}).items()}
        self.num_cache_hits = int(cache.get("num_cache_hits", 0))

    def _repair_cache_after_kill(self) -> None:
        """A trial whose end was recorded but whose reward never reached the cache."""
        ended = set(self.end_order)
        for trial_id in list(self.in_flight):
            if trial_id not in self.trials:
                del self.in_flight[trial_id]
            elif trial_id in ended and trial_id not in internals.retry_queue(self):
                self._settle_cache(self.trials[trial_id])

    def reload(self):
        super().reload()
        self._repair_cache_after_kill()
