"""PPOOracle / RandomOracle driven through keras-tuner's trial loop with fake rewards.

No model is trained: like keras-tuner's own oracle tests, a test calls `create_trial`,
`update_trial` and `end_trial` and makes up the score.
"""

import time

import keras_tuner
import numpy as np
import pytest

from tuner import keras_tuner_internals as internals
from tuner.oracles import RandomOracle, PPOOracle, make_oracle
from tuner.space import SearchSpace

SMALL = SearchSpace(num_blocks=2)


def new_oracle(tmp_path, strategy="ppo", space=SMALL, persist=True, **kwargs):
    kwargs.setdefault("max_consecutive_failed_trials", 100)
    oracle = make_oracle(strategy, space, **kwargs)
    internals.set_project_dir(oracle, str(tmp_path), "search")
    oracle.verbose = 0
    if not persist:  # the comparison below measures the strategy, not keras-tuner's disk I/O
        internals.skip_state_files(oracle)
    return oracle


def run_trial(oracle, score, status="COMPLETED", step=0):
    """One worker iteration: ask for a trial, report `score(values)` (None: no report), end it."""
    trial = oracle.create_trial("tuner0")
    if trial.status != "RUNNING":
        return trial
    value = score(trial.hyperparameters.values)
    if value is not None:
        oracle.update_trial(trial.trial_id, {"val_accuracy": value}, step=step)
    trial.status = status
    oracle.end_trial(trial)
    return trial


def test_populate_space_returns_all_decisions_and_records_the_sample(tmp_path):
    oracle = new_oracle(tmp_path, seed=1)
    trial = oracle.create_trial("tuner0")
    values = trial.hyperparameters.values
    assert trial.status == "RUNNING" and set(values) == set(SMALL.names)
    record = oracle.pending[trial.trial_id]
    assert record["indices"] == SMALL.to_indices(values)
    assert record["log_prob"] == pytest.approx(float(oracle.controller.log_prob(record["indices"])[0]), abs=1e-4)
    assert SMALL.decode(values).num_blocks == 2


def test_trials_sampled_before_an_update_use_their_recorded_log_prob(tmp_path, monkeypatch):
    oracle = new_oracle(tmp_path, seed=2, batch_size=2, learning_rate=0.05)
    fed = []
    original = oracle.ppo.observe
    monkeypatch.setattr(oracle.ppo, "observe", lambda d, lp, r: fed.append((list(d), lp, r)) or original(d, lp, r))
    trials = [oracle.create_trial(f"tuner{i}") for i in range(3)]  # three workers
    recorded = {t.trial_id: oracle.pending[t.trial_id]["log_prob"] for t in trials}
    for i, trial in enumerate(trials):
        oracle.update_trial(trial.trial_id, {"val_accuracy": [0.1, 0.9, 0.5][i]})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        if i == 1:
            assert oracle.ppo.num_updates == 1  # the policy changed before trial 2 ended
    assert [lp for _, lp, _ in fed] == [recorded[t.trial_id] for t in trials]
    now = float(oracle.controller.log_prob(fed[2][0])[0])
    assert abs(now - fed[2][1]) > 1e-3  # the current policy differs: the ratio is not 1
    assert oracle.pending == {}


def test_failed_nan_and_missing_scores_are_not_fed_to_ppo(tmp_path):
    oracle = new_oracle(tmp_path, seed=3, batch_size=2)
    run_trial(oracle, lambda v: 0.5, status="FAILED")
    run_trial(oracle, lambda v: float("nan"))  # NaN -> INVALID -> FAILED (no retries)
    run_trial(oracle, lambda v: None)  # COMPLETED without the objective: score None
    run_trial(oracle, lambda v: float("inf"))
    statuses = [oracle.trials[t].status for t in oracle.end_order]
    assert statuses == ["FAILED"] * 4
    assert oracle.ppo.num_rewards == 0 and oracle.ppo.baseline is None and oracle.ppo.buffer == []
    assert oracle.num_skipped == 4 and oracle.pending == {}
    run_trial(oracle, lambda v: 0.7)
    assert oracle.ppo.num_rewards == 1 and oracle.ppo.baseline == 0.7


def test_a_retried_trial_is_fed_once_with_its_original_record(tmp_path):
    oracle = new_oracle(tmp_path, seed=4, max_retries_per_trial=1)
    first = run_trial(oracle, lambda v: float("nan"))
    assert first.trial_id in oracle.pending and oracle.ppo.num_rewards == 0  # queued for retry
    record = dict(oracle.pending[first.trial_id])
    # Step 1: keras-tuner keeps a retried trial's metrics, and averages values of one step.
    retry = run_trial(oracle, lambda v: 0.4, step=1)
    assert retry.trial_id == first.trial_id and oracle.ppo.num_rewards == 1
    assert oracle.ppo.buffer[0]["old_log_prob"] == record["log_prob"]
    assert oracle.ppo.buffer[0]["decisions"] == record["indices"]


def test_min_objective_rewards_the_negated_score(tmp_path):
    oracle = new_oracle(tmp_path, seed=5, objective=keras_tuner.Objective("val_loss", "min"))
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"val_loss": 2.5})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert oracle.ppo.buffer[0]["reward"] == -2.5


def test_max_trials_stops_the_search(tmp_path):
    oracle = new_oracle(tmp_path, seed=6, max_trials=2)
    for _ in range(2):
        assert run_trial(oracle, lambda v: 0.5).status == "COMPLETED"
    assert oracle.create_trial("tuner0").status == "STOPPED"
    assert oracle.populate_space("2")["status"] == "STOPPED"


def test_make_oracle_strategies_and_errors():
    assert isinstance(make_oracle("ppo", SMALL, seed=1), PPOOracle)
    random_oracle = make_oracle("random", SMALL, seed=1, learning_rate=None, epochs=None)
    assert isinstance(random_oracle, RandomOracle)
    assert random_oracle.objective.name == "val_accuracy" and random_oracle.objective.direction == "max"
    with pytest.raises(ValueError, match=r"`strategy` must be one of 'ppo', 'random', 'evolution' \(the search strategy\). Received: strategy='bayesian'"):
        make_oracle("bayesian", SMALL)
    with pytest.raises(ValueError, match=r"learning_rate=0.1"):
        make_oracle("random", SMALL, learning_rate=0.1)
    with pytest.raises(ValueError, match="SearchSpace"):
        make_oracle("ppo", {"num_blocks": 2})


def test_resuming_with_another_space_is_refused(tmp_path):
    oracle = new_oracle(tmp_path, seed=7)
    run_trial(oracle, lambda v: 0.5)
    other = new_oracle(tmp_path, space=SearchSpace(num_blocks=2, combines=("add",)), seed=7)
    with pytest.raises(ValueError, match="written for search space"):
        other.reload()


def test_random_oracle_samples_each_choice_uniformly(tmp_path):
    oracle = new_oracle(tmp_path, "random", seed=8, persist=False, max_trials=400)
    counts = np.zeros(13)
    for _ in range(400):
        values = run_trial(oracle, lambda v: 0.5).hyperparameters.values
        for name, value in values.items():
            if "_op_" in name:
                counts[SMALL.ops.index(value)] += 1
    expected = counts.sum() / 13  # 400 trials x 8 op decisions / 13 ops ~ 246
    assert np.all(np.abs(counts - expected) < 0.25 * expected), counts


def matching_reward(space, target):
    """Synthetic reward: the fraction of decisions equal to a hidden target architecture."""
    return lambda values: float(np.mean(np.array(space.to_indices(values)) == target))


# The acceptance test. Measured through this oracle on the 2-core CPU (shared with
# other jobs), full B=5 space, mean reward of trials 900-999 for seeds 0, 1, 2; uniform
# random search scores 0.247 (0.246 / 0.244 / 0.249 measured):
#   paper settings, lr 0.00035, 10 epochs:  0.904 / 0.920 / 0.934   ~22 s per seed
#   lr 0.003, 2 epochs:                     0.939 / 0.940 / 0.939   ~11 s per seed
# The paper's learning rate does converge in 1,000 trials. The test runs the larger step
# with fewer epochs for 400 trials per strategy: PPO's trials 300-399 already score
# 0.703 / 0.691 / 0.713 (random: i.i.d., so its last 100 of any budget score ~0.247), a
# margin of ~0.45 over random for an asserted 0.2, at ~5 s per seed; trials 400-999,
# where the converged policy mostly repeats cached architectures, cost most of the time.
LR, EPOCHS, SEEDS, TRIALS = 0.003, 2, (0, 1, 2), 400


def _record_observations(oracle):
    """Keep every reward PPO is fed, in order (trained children and cached repeats)."""
    oracle.observed = []
    observe = oracle.ppo.observe

    def recording(decisions, old_log_prob, reward):
        oracle.observed.append(reward)
        return observe(decisions, old_log_prob, reward)

    oracle.ppo.observe = recording


@pytest.mark.slow
def test_ppo_beats_random_search_on_a_synthetic_reward(tmp_path):
    space = SearchSpace()
    start = time.time()
    results = {"ppo": [], "random": []}
    seconds = {"ppo": 0.0, "random": 0.0}
    for seed in SEEDS:
        target = np.random.default_rng(1000 + seed).integers(0, np.array(space.sizes))
        reward = matching_reward(space, target)
        for strategy in results:
            options = {"learning_rate": LR, "epochs": EPOCHS, "preset": "paper"} if strategy == "ppo" else {}
            oracle = new_oracle(tmp_path / f"{strategy}{seed}", strategy, space, persist=False,
                                seed=seed + 1, max_trials=TRIALS, **options)
            if strategy == "ppo":
                _record_observations(oracle)
            began = time.time()
            rewards = []
            for _ in range(TRIALS):
                trial = run_trial(oracle, reward)
                if trial.status != "COMPLETED":  # STOPPED: PPO only proposes architectures it knows
                    break
                rewards.append(reward(trial.hyperparameters.values))
            if strategy == "ppo":  # what the policy samples: repeats answered by the reward cache included
                rewards = oracle.observed
            seconds[strategy] += time.time() - began
            results[strategy].append(float(np.mean(rewards[-100:])))
    ppo, random = np.mean(results["ppo"]), np.mean(results["random"])
    print(f"\nlast-100 mean reward: PPO {results['ppo']} random {results['random']}; "
          f"{time.time() - start:.1f} s (PPO {seconds['ppo']:.1f} s, random {seconds['random']:.1f} s)")
    assert random == pytest.approx(np.mean(1 / np.array(space.sizes)), abs=0.03)
    assert ppo > random + 0.2
    assert min(results["ppo"]) > max(results["random"]) + 0.1
