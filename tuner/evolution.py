"""Regularized (aging) evolution as a keras-tuner oracle (Real et al., AAAI 2019; AmoebaNet).

The algorithm (their Algorithm 1), over any categorical space:

* the first `population_size` children are drawn uniformly at random;
* after that, each new child is a mutation of a tournament winner: `sample_size` members
  of the population are drawn without replacement, the best one is copied, and one of its
  decisions (chosen uniformly) is changed to another value (chosen uniformly);
* each child that reports a score joins the population and the *oldest* member leaves
  (not the worst: ageing is the regulariser that keeps the search from over-trusting one
  lucky, noisy reward).

Asynchronous as in the paper: a proposal uses the population as it is when a worker asks;
children join in the order they finish. A FAILED child never joins. With the reward cache
(`tuner.reward_cache`) a mutation into an architecture already trained joins the
population with its known reward, without training.

State (oracle.json, JSON only): the population in age order, the pending proposals and the
proposal counter; the proposal noise is drawn from a generator seeded by (seed, counter),
so a resumed search proposes exactly what the uninterrupted one would have.

Defaults `population_size=20, sample_size=5` were chosen on the NAS-Bench-Graph tuning
datasets for 100-500 children (docs/search_strategies.md); the paper's large-scale
settings (P=100, S=25 for 20,000 children) are the `paper` preset of `tuner.presets`.
"""

from __future__ import annotations

import math
from typing import Any

import keras_tuner
import numpy as np

from nasnet_keras.checks import check_int
from tuner import keras_tuner_internals as internals
from tuner.categorical import check_space as _check_space
from tuner.categorical import check_stored_space as _check_stored_space
from tuner.categorical import default_objective as _default_objective
from tuner.categorical import strategy_state
from tuner.reward_cache import RewardCacheMixin
from tuner.state_journal import StateJournalMixin

TrialStatus = keras_tuner.engine.trial.TrialStatus
STATE_KEY = "evolution_oracle"
DEFAULT_POPULATION_SIZE = 20
DEFAULT_SAMPLE_SIZE = 5
DEFAULT_MAX_TRIALS = 20000  # as tuner.oracles (which imports this module)


class EvolutionOracle(StateJournalMixin, RewardCacheMixin, internals.FastCopySpaceMixin, keras_tuner.Oracle):
    """Regularized evolution over a `SearchSpace` or `CategoricalSpace`.

    Args:
        search_space: the space of decisions.
        objective, max_trials, seed, **kwargs: as `tuner.oracles.PPOOracle`.
        population_size: P, members kept (the oldest leaves when a child joins).
        sample_size: S, tournament size (1 <= S <= P); S = P is greedy, S = 1 is random walk.
    """

    def __init__(self, search_space, objective=None, max_trials: int | None = DEFAULT_MAX_TRIALS,
                 seed: int | None = None, population_size: int = DEFAULT_POPULATION_SIZE,
                 sample_size: int = DEFAULT_SAMPLE_SIZE, **kwargs):
        self.search_space = _check_space(search_space, kwargs, "EvolutionOracle")
        self.population_size = check_int("population_size", population_size, minimum=1)
        self.sample_size = check_int("sample_size", sample_size, minimum=1, maximum=population_size,
                                     hint=" (at most population_size)")
        super().__init__(objective=_default_objective(objective), max_trials=max_trials,
                         hyperparameters=search_space.hyperparameters(), seed=seed, **kwargs)
        self.population: list[dict[str, Any]] = []  # oldest first: {"indices", "score"}
        self.pending: dict[str, dict[str, Any]] = {}  # trial id -> {"indices"}
        self.num_proposed = 0
        self.num_skipped = 0

    # --- proposals -----------------------------------------------------------------------
    def _mutate(self, indices: list[int], rng: np.random.Generator) -> list[int]:
        sizes = self.search_space.sizes
        mutable = [i for i, size in enumerate(sizes) if size > 1]
        child = list(indices)
        if not mutable:
            return child
        decision = mutable[int(rng.integers(len(mutable)))]
        other = int(rng.integers(sizes[decision] - 1))
        child[decision] = other if other < child[decision] else other + 1
        return child

    def _fitness(self, member: dict[str, Any]) -> float:
        return member["score"] if self.objective.direction == "max" else -member["score"]

    def _propose(self, trial_id):
        if self.max_trials and len(self.trials) >= self.max_trials:
            return {"status": TrialStatus.STOPPED, "values": None}
        rng = np.random.default_rng([abs(int(self.seed)), self.num_proposed])
        self.num_proposed += 1
        if len(self.population) < self.population_size:
            indices = [int(rng.integers(size)) for size in self.search_space.sizes]
        else:
            contestants = rng.choice(len(self.population), size=self.sample_size, replace=False)
            # max() keeps the first of equals; contestants are in draw order, so ties go by chance.
            parent = max((self.population[int(i)] for i in contestants), key=self._fitness)
            indices = self._mutate(parent["indices"], rng)
        self.pending[trial_id] = {"indices": indices}
        return {"status": TrialStatus.RUNNING, "values": self.search_space.from_indices(indices)}

    def _detach_sample(self, trial_id):
        return self.pending.pop(trial_id)

    def _join(self, indices: list[int], score: float) -> None:
        self.population.append({"indices": [int(i) for i in indices], "score": float(score)})
        if len(self.population) > self.population_size:
            self.population.pop(0)  # ageing: the oldest leaves, however good

    def _feed_cached(self, record, score):
        self._join(record["indices"], score)

    # --- results (a finished trial joins through RewardCacheMixin._settle) -----------------
    def score_trial(self, trial):
        try:
            super().score_trial(trial)
        except ValueError:  # the objective was never reported
            trial.score, trial.best_step = None, None
        if trial.score is None or not math.isfinite(float(trial.score)):
            trial.score = float("nan")  # keras-tuner marks it INVALID (retried, then FAILED)

    @keras_tuner.synchronized
    def end_trial(self, trial):
        super().end_trial(trial)
        self._settle(self.trials[trial.trial_id])
        self.save()

    # --- state ---------------------------------------------------------------------------
    def get_state(self):
        state = super().get_state()
        state[STATE_KEY] = {
            "search_space": self.search_space.to_dict(),
            "population_size": self.population_size,
            "sample_size": self.sample_size,
            "population": self.population,
            "pending": self.pending,
            "num_proposed": self.num_proposed,
            "num_skipped": self.num_skipped,
        }
        return state

    def set_state(self, state):
        super().set_state(state)
        own = strategy_state(state, STATE_KEY, "an EvolutionOracle")
        _check_stored_space(self.search_space, own["search_space"], "oracle.json")
        if (own["population_size"], own["sample_size"]) != (self.population_size, self.sample_size):
            raise ValueError(
                f"oracle.json was written with population_size={own['population_size']}, "
                f"sample_size={own['sample_size']}; this oracle has {self.population_size}, {self.sample_size}. "
                "Resume with the same settings"
            )
        self.population = [{"indices": [int(i) for i in m["indices"]], "score": float(m["score"])}
                           for m in own["population"]]
        self.pending = {str(k): {"indices": [int(i) for i in v["indices"]]} for k, v in own["pending"].items()}
        self.num_proposed = int(own["num_proposed"])
        self.num_skipped = int(own["num_skipped"])

    def reload(self):
        super().reload()
        # A trial whose end was recorded but that never joined the population (killed between).
        ended = set(self.end_order)
        changed = False
        for trial_id in list(self.pending):
            if trial_id not in self.trials:
                del self.pending[trial_id]
                changed = True
            elif trial_id in ended and trial_id not in internals.retry_queue(self):
                self._settle(self.trials[trial_id])
                changed = True
        if changed:
            self.save()
