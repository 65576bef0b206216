"""Search strategies on the real oracles: NAS-Bench-Graph lookup, reward cache, evolution, presets.

The tabular tests need `.data/nas_bench_graph` (`make nas-bench-graph`, part of `make test`).
Rewards are looked up or made up; the one NASTuner test counts `train_child` calls with a
stand-in trainer, so no model is trained.
"""

import itertools
import math
import pickle

import keras_tuner
import numpy as np
import pytest

from tuner import search
from tuner.benchmark_tabular import (
    OPS, TabularBenchmark, _NumpyScalarUnpickler, canonical_hash, make_space, run_search,
)
from tuner.children import ChildConfig, ChildResult
from tuner.cost import cost_aware_reward
from tuner.evolution import EvolutionOracle
from tuner.oracles import PPOOracle, make_oracle
from tuner.presets import PRESETS
from tuner.space import SearchSpace

Status = keras_tuner.engine.trial.TrialStatus


@pytest.fixture(scope="module")
def cora():
    return TabularBenchmark("cora")


def new_oracle(tmp_path, strategy, space, **kwargs):
    oracle = make_oracle(strategy, space, **kwargs)
    oracle._set_project_dir(str(tmp_path), "search")
    oracle.verbose = 0
    return oracle


# --- NAS-Bench-Graph ----------------------------------------------------------------------
def test_every_point_of_the_space_hits_the_table(cora):
    """All 24 link patterns x 9**4 op lists (but all-skip) map onto the 26,206 entries."""
    keys = set()
    for l1, l2, l3 in itertools.product(range(2), range(3), range(4)):
        for ops in itertools.product(OPS, repeat=4):
            if set(ops) == {"skip"}:
                continue
            keys.add(f"nbg-{canonical_hash([0, l1, l2, l3], list(ops))}")
    assert keys == set(cora.table)
    assert len(cora.table) == 26206


def test_isomorphic_cells_share_a_key_and_distinct_ones_do_not():
    # Two parallel branches from the input, in either order, are one cell.
    assert canonical_hash([0, 0, 1, 2], ["gcn", "gat", "sage", "gin"]) == canonical_hash(
        [0, 0, 1, 2], ["gat", "gcn", "gin", "sage"])
    # [0,0,0,2] is [0,0,0,1] with the first two layers swapped (the wheel's regularisation).
    assert canonical_hash([0, 0, 0, 2], ["gcn", "gat", "sage", "gin"]) == canonical_hash(
        [0, 0, 0, 1], ["gat", "gcn", "sage", "gin"])
    assert canonical_hash([0, 1, 2, 3], ["gcn", "gat", "sage", "gin"]) != canonical_hash(
        [0, 1, 2, 3], ["gat", "gcn", "sage", "gin"])


def test_table_values_and_lookup(cora):
    space = make_space()
    assert space.sizes == [9, 2, 9, 3, 9, 4, 9]
    values = {"op_0": "gcn", "link_1": 1, "op_1": "gcn", "link_2": 2, "op_2": "fc", "link_3": 3, "op_3": "skip"}
    entry = cora.lookup(values)
    assert 0.3 < entry.valid < 0.9 and 0.3 < entry.test < 0.9 and entry.latency > 0 and entry.params > 0
    assert cora.lookup({**values, "op_0": "skip", "op_1": "skip", "op_2": "skip"}).valid == 0.0
    assert 0.80 < cora.top1_threshold < cora.best_valid < 0.83
    with pytest.raises(ValueError, match="Received: dataset='proteins'"):
        TabularBenchmark("proteins")


def test_the_unpickler_refuses_anything_but_numbers(tmp_path):
    path = tmp_path / "evil.bench"
    path.write_bytes(pickle.dumps({0: {"valid_perf": math.pi, "f": print}}))
    with open(path, "rb") as f, pytest.raises(pickle.UnpicklingError, match="builtins.print"):
        _NumpyScalarUnpickler(f).load()
    path.write_bytes(pickle.dumps({0: np.float64(0.5)}))
    with open(path, "rb") as f:
        assert _NumpyScalarUnpickler(f).load() == {0: 0.5}


# --- the reward cache ---------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["ppo", "evolution", "random"])
def test_no_architecture_is_trained_twice(tmp_path, cora, strategy):
    # PPO's updates cost TF time: a short search, with a controller that concentrates fast.
    budget, options = {"ppo": (40, {"learning_rate": 0.05, "batch_size": 5}), "evolution": (100, {}),
                       "random": (300, {})}[strategy]
    oracle = new_oracle(tmp_path, strategy, cora.space, max_trials=budget, seed=3, **options)
    trace = run_search(oracle, cora, budget, str(tmp_path))
    keys = [cora.space.architecture_key(t.hyperparameters.values) for t in oracle.trials.values()]
    trained = len(oracle.trials)
    assert len(trace.valid) == trained and (trained == budget or trace.stopped_early)
    assert len(set(keys)) == trained  # every trained trial is a new architecture
    assert oracle.num_cache_hits > 0
    if strategy == "ppo":  # PPO still saw every sample, on-policy: trained ones and repeats
        assert oracle.ppo.num_rewards == trained + oracle.num_cache_hits
    if strategy == "evolution":
        assert len(oracle.population) == oracle.population_size


def test_a_repeat_of_a_running_child_waits_for_its_reward(tmp_path):
    from tuner.categorical import CategoricalSpace

    space = CategoricalSpace("two", [("x", ("a", "b"))])
    oracle = new_oracle(tmp_path, "ppo", space, max_trials=10, seed=1, batch_size=1000)  # no update
    first = oracle.create_trial("w0")
    second = oracle.create_trial("w1")
    assert first.status == second.status == Status.RUNNING
    assert first.hyperparameters.values != second.hyperparameters.values  # the repeat was held back
    assert oracle.create_trial("w2").status == Status.IDLE  # both points are being trained
    key = space.architecture_key(first.hyperparameters.values) + "@"
    held = len(oracle.waiting[key])
    assert held > 0 and oracle.num_cache_hits >= held and len(oracle.ppo.buffer) == 0
    oracle.update_trial(first.trial_id, {"val_accuracy": 0.7})
    first.status = Status.COMPLETED
    oracle.end_trial(first)
    # The owner's reward and every held-back repeat of it reached PPO; none was trained.
    assert len(oracle.ppo.buffer) == 1 + held and key not in oracle.waiting
    assert all(entry["reward"] == 0.7 for entry in oracle.ppo.buffer)
    assert oracle.cached_rewards == {key: 0.7}


def test_the_cache_survives_a_resume_and_is_keyed_by_recipe(tmp_path, cora):
    oracle = new_oracle(tmp_path, "evolution", cora.space, max_trials=40, seed=5)
    run_search(oracle, cora, 40, str(tmp_path))
    resumed = make_oracle("evolution", cora.space, max_trials=80, seed=5)
    resumed._set_project_dir(str(tmp_path), "search")
    resumed.set_recipe(oracle.recipe)
    resumed.reload()
    assert resumed.cached_rewards == oracle.cached_rewards and len(resumed.cached_rewards) == 40
    assert resumed.num_cache_hits == oracle.num_cache_hits
    assert all(key.endswith("@nas-bench-graph/cora/valid") for key in resumed.cached_rewards)
    trace = run_search(resumed, cora, 40, str(tmp_path))
    keys = [cora.space.architecture_key(t.hyperparameters.values) for t in resumed.trials.values()]
    assert len(keys) == len(set(keys)) == 80 and len(trace.valid) == 40


def test_nastuner_does_not_retrain_a_known_child_and_reports_the_hits(tmp_path, monkeypatch):
    """Count real NASTuner trainings: a tiny NASNet space (256 points), where evolution's
    mutations revisit architectures often."""
    space = SearchSpace(num_blocks=1, ops=("identity", "max_pool_3x3"), combines=("add",))
    trained = []

    def fake_train_child(genotype, train, validation, config, verbose=0, callbacks=()):
        trained.append(genotype.id)
        accuracy = 0.5 + 0.1 * (genotype.normal.blocks[0].ops[0] == "identity")
        return ChildResult(genotype.id, accuracy, 1.0, 10, 0.0, 1, {})

    monkeypatch.setattr(search, "train_child", fake_train_child)
    oracle = make_oracle("evolution", space, max_trials=12, seed=2, population_size=3, sample_size=2)
    lines = []
    tuner = search.NASTuner(oracle, ChildConfig(classes=10, epochs=1), strategy="evolution", directory=str(tmp_path),
                            overwrite=True, log=lines.append)
    monkeypatch.setattr(tuner, "write_report", lambda: {})
    tuner.search(None, None)
    assert len(trained) == len(set(trained)) == len(oracle.trials) == 12
    assert oracle.num_cache_hits > 0
    assert f"12 children trained, {oracle.num_cache_hits} rewards from the cache" in lines[-1]
    assert oracle.recipe and all(key.endswith("@" + oracle.recipe) for key in oracle.cached_rewards)


# --- evolution ----------------------------------------------------------------------------
def test_evolution_mutates_one_decision_of_the_tournament_winner(tmp_path, cora):
    oracle = new_oracle(tmp_path, "evolution", cora.space, max_trials=60, seed=7, population_size=10, sample_size=3)
    run_search(oracle, cora, 30, str(tmp_path))
    members = [m["indices"] for m in oracle.population]
    trial = oracle.create_trial("w")
    child = cora.space.to_indices(trial.hyperparameters.values)
    assert min(sum(a != b for a, b in zip(child, m)) for m in members) == 1
    assert len(oracle.population) == 10


def test_evolution_population_survives_a_resume_exactly(tmp_path, cora):
    straight = new_oracle(tmp_path / "a", "evolution", cora.space, max_trials=60, seed=11)
    run_search(straight, cora, 60, str(tmp_path / "a"))

    first = new_oracle(tmp_path / "b", "evolution", cora.space, max_trials=60, seed=11)
    run_search(first, cora, 35, str(tmp_path / "b"))
    resumed = make_oracle("evolution", cora.space, max_trials=60, seed=11)
    resumed._set_project_dir(str(tmp_path / "b"), "search")
    resumed.set_recipe(first.recipe)
    resumed.reload()
    assert resumed.population == first.population and resumed.num_proposed == first.num_proposed
    run_search(resumed, cora, 25, str(tmp_path / "b"))
    assert resumed.population == straight.population
    values = lambda o: [o.trials[i].hyperparameters.values for i in sorted(o.trials)]  # noqa: E731
    assert values(resumed) == values(straight)
    with pytest.raises(ValueError, match="population_size=20"):
        other = make_oracle("evolution", cora.space, max_trials=60, seed=11, population_size=30)
        other._set_project_dir(str(tmp_path / "b"), "search")
        other.reload()


@pytest.mark.parametrize("strategy", ["ppo", "evolution"])
def test_a_seeded_search_is_reproducible(tmp_path, cora, strategy):
    n = 45  # PPO: two updates of 20
    traces = [run_search(new_oracle(tmp_path / str(i), strategy, cora.space, max_trials=n, seed=4), cora, n,
                         str(tmp_path / str(i))) for i in range(2)]
    assert traces[0].valid == traces[1].valid and traces[0].num_cache_hits == traces[1].num_cache_hits
    other = run_search(new_oracle(tmp_path / "o", strategy, cora.space, max_trials=n, seed=5), cora, n,
                       str(tmp_path / "o"))
    assert other.valid != traces[0].valid


def test_evolution_arguments_are_checked(cora):
    with pytest.raises(ValueError, match="Received: sample_size=30"):
        EvolutionOracle(cora.space, population_size=20, sample_size=30)
    with pytest.raises(ValueError, match="mean nothing for strategy 'evolution'"):
        make_oracle("evolution", cora.space, learning_rate=0.1)


# --- presets and the cost-aware reward ----------------------------------------------------
def test_presets(cora):
    paper = make_oracle("ppo", cora.space, preset="paper", seed=1)
    default = make_oracle("ppo", cora.space, seed=1)
    assert isinstance(paper, PPOOracle)
    assert paper.ppo.learning_rate == 0.00035 and paper.ppo.batch_size == 20 and not paper.ppo.normalize_advantages
    for key, value in PRESETS["ppo"]["default"].items():
        assert getattr(default.ppo, key) == value
    assert make_oracle("ppo", cora.space, seed=1, learning_rate=0.01).ppo.learning_rate == 0.01
    assert make_oracle("evolution", cora.space, preset="paper", seed=1).population_size == 100
    with pytest.raises(ValueError, match="Received: preset='fast'"):
        make_oracle("ppo", cora.space, preset="fast")


def test_cost_aware_reward():
    assert cost_aware_reward(0.8, 100, 100) == pytest.approx(0.8)
    assert cost_aware_reward(0.8, 200, 100) == pytest.approx(0.8 * 2 ** -0.07)
    assert cost_aware_reward(0.8, 50, 100) == pytest.approx(0.8 * 0.5 ** -0.07)
    assert cost_aware_reward(0.8, 50, 100, weight=-1.0, weight_below=0.0) == pytest.approx(0.8)
    assert cost_aware_reward(0.8, 200, 100, weight=-1.0, weight_below=0.0) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="Received: target=0"):
        cost_aware_reward(0.8, 1, 0)


def test_nastuner_rewards_the_final_models_cost_without_training_it(tmp_path, monkeypatch):
    """--target-mult-adds: the objective is accuracy x (Mult-Adds / target)^w of the final-size model."""
    from nasnet_keras.applications import NASNetCIFAR
    from nasnet_keras.profiling import profile
    from tuner.cost import CostTarget

    space = SearchSpace(num_blocks=1, ops=("identity", "sep_conv_3x3"), combines=("add",))
    monkeypatch.setattr(search, "train_child",
                        lambda genotype, *a, **k: ChildResult(genotype.id, 0.5, 1.0, 10, 0.0, 1, {}))
    target = CostTarget(mult_adds=1e6, weight=-0.07, final_cells=1, final_filters=8, image_size=16, classes=10)
    oracle = make_oracle("random", space, max_trials=2, seed=2)
    tuner = search.NASTuner(oracle, ChildConfig(classes=10, epochs=1), strategy="random", directory=str(tmp_path),
                            overwrite=True, log=lambda line: None, cost_target=target)
    monkeypatch.setattr(tuner, "write_report", lambda: {})
    tuner.search(None, None)
    assert tuner.search_config["run"]["cost_target"]["mult_adds"] == 1e6
    for trial in oracle.trials.values():
        genotype = space.decode(trial.hyperparameters.values)
        final = profile(NASNetCIFAR(input_shape=(16, 16, 3), num_blocks=1, filters=8, classes=10, genotype=genotype))
        metrics = trial.metrics
        assert metrics.get_last_value("final_mult_adds") == final.mult_adds
        assert metrics.get_last_value("accuracy") == 0.5
        assert trial.score == pytest.approx(0.5 * (final.mult_adds / 1e6) ** -0.07)
    with pytest.raises(ValueError, match="Received neither"):
        CostTarget()


def test_a_project_of_another_strategy_is_refused_on_resume():
    """Each oracle finds its own entry in oracle.json, or names the strategy it expected."""
    from tuner.evolution import EvolutionOracle
    from tuner.oracles import PPOOracle
    from tuner.space import SearchSpace

    space = SearchSpace(num_blocks=1)
    ppo_state = PPOOracle(space, seed=0, max_trials=2).get_state()
    with pytest.raises(ValueError, match="'evolution_oracle' entry: the project was not written by an EvolutionOracle"):
        EvolutionOracle(space, seed=0, max_trials=2).set_state(ppo_state)
    evolution_state = EvolutionOracle(space, seed=0, max_trials=2).get_state()
    with pytest.raises(ValueError, match="'ppo_oracle' entry: the project was not written by a PPOOracle"):
        PPOOracle(space, seed=0, max_trials=2).set_state(evolution_state)


def test_an_add_block_with_its_two_terms_swapped_is_one_architecture():
    """The cache key of NASNet children: a sum's terms in either order are one child; concat's are not."""
    from tuner.space import SearchSpace

    space = SearchSpace(num_blocks=2)
    rng = np.random.default_rng(0)
    for _ in range(20):
        values = space.from_indices([int(rng.integers(s)) for s in space.sizes])
        for cell in ("normal", "reduction"):
            swapped = dict(values)
            for a, b in (("input_1", "input_2"), ("op_1", "op_2")):
                swapped[f"{cell}_b1_{a}"], swapped[f"{cell}_b1_{b}"] = values[f"{cell}_b1_{b}"], values[f"{cell}_b1_{a}"]
            if swapped == values:
                continue  # both terms alike: nothing swapped
            same = space.architecture_key(swapped) == space.architecture_key(values)
            assert same == (values[f"{cell}_b1_combine"] == "add"), (cell, values)
            assert space.decode(swapped).id != space.decode(values).id  # the genotype itself keeps its order
