"""NAS-Bench-Graph as a tabular benchmark for search strategies: children scored by lookup.

NAS-Bench-Graph (Qin et al., NeurIPS 2022 Datasets & Benchmarks; PyPI `nas-bench-graph`
1.4.0) trained every architecture of a GNN cell space on 9 graph datasets and ships, per
dataset, a pickled dict `hash -> {'valid_perf', 'perf' (test), 'latency', 'para'}` in
`nas_bench_graph/light/<dataset>.bench`. A strategy that finds good cells there with few
lookups is sample-efficient on a real accuracy landscape, which a toy reward cannot show.

The space (the wheel's `architecture.py`): a cell of 4 GNN layers; layer i reads the cell
input (0) or layer j < i (link pattern `[0, l1, l2, l3]`, l_i in 0..i: 24 patterns), and
each layer is one of 9 ops. Isomorphic cells share one table entry: the wheel's
`Arch.valid_hash` regularises the link pattern to one of 9 canonical ones, moves skip
layers, sorts interchangeable layers and hashes the result. That logic is reimplemented
here (`canonical_hash`; importing the wheel pulls torch and nni), and a test checks that
every one of the 24 * 9**4 - 1 points hits the table. The all-skip cell is not in the
table (it has no GNN layer); it scores 0.

The pickles are read with `_NumpyScalarUnpickler`, which only resolves numpy's scalar
constructor and dtype: a pickle can run arbitrary code, and these are downloaded data.

The "proteins" table uses another op list (5 ops) and is not offered.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from typing import Any, Mapping, Sequence

import numpy as np

from nasnet_keras.checks import check_choice
from tuner.categorical import CategoricalSpace

DATASETS = ("arxiv", "citeseer", "computers", "cora", "cs", "photo", "physics", "pubmed")
OPS = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
CANONICAL_LINKS = (
    (0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 1), (0, 0, 1, 2), (0, 0, 1, 3),
    (0, 1, 1, 1), (0, 1, 1, 2), (0, 1, 2, 2), (0, 1, 2, 3),
)
# Where `make nas-bench-graph` unpacks the wheel's tables (override: NAS_BENCH_GRAPH_DIR).
DEFAULT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".data", "nas_bench_graph")
ALL_SKIP_SCORE = 0.0

# link pattern -> (canonical pattern, op permutation), the wheel's Arch.regularize.
_REGULARIZE = {
    (0, 0, 0, 2): ((0, 0, 0, 1), (1, 0, 2, 3)),
    (0, 0, 0, 3): ((0, 0, 0, 1), (2, 0, 1, 3)),
    (0, 0, 1, 0): ((0, 0, 0, 1), (0, 1, 3, 2)),
    (0, 0, 2, 0): ((0, 0, 0, 1), (1, 0, 3, 2)),
    (0, 0, 2, 1): ((0, 0, 1, 2), (1, 0, 2, 3)),
    (0, 0, 2, 2): ((0, 0, 1, 1), (1, 0, 2, 3)),
    (0, 0, 2, 3): ((0, 0, 1, 3), (1, 0, 2, 3)),
    (0, 1, 0, 0): ((0, 0, 0, 1), (0, 2, 3, 1)),
    (0, 1, 0, 1): ((0, 0, 1, 1), (0, 2, 1, 3)),
    (0, 1, 0, 2): ((0, 0, 1, 3), (0, 2, 1, 3)),
    (0, 1, 0, 3): ((0, 0, 1, 2), (0, 2, 1, 3)),
    (0, 1, 1, 0): ((0, 0, 1, 1), (0, 3, 1, 2)),
    (0, 1, 1, 3): ((0, 1, 1, 2), (0, 2, 1, 3)),
    (0, 1, 2, 0): ((0, 0, 1, 3), (0, 3, 1, 2)),
    (0, 1, 2, 1): ((0, 1, 1, 2), (0, 1, 3, 2)),
}


def _regularize(link: list[int], ops: list[str]) -> tuple[list[int], list[str]]:
    if tuple(link) in _REGULARIZE:
        canonical, perm = _REGULARIZE[tuple(link)]
        return list(canonical), [ops[i] for i in perm]
    return list(link), list(ops)


def _move_skip_ops(link: list[int], ops: list[str]) -> tuple[list[int], list[str]]:
    """The wheel's Arch.move_skip_op: a skip layer that feeds others, or has no sibling,
    is moved to the front (it only renames a state), then two patterns are relabelled."""

    def move_one(k, link, ops):
        ops = [ops[k]] + ops[:k] + ops[k + 1:]
        for i, father in enumerate(link):
            if father == k + 1:
                link[i] = link[k]
            if father <= k:
                link[i] = link[i] + 1
        return [0] + link[:k] + link[k + 1:], ops

    def reads_input_through_skips(k, link, ops):
        while k > -1:
            if ops[k] != "skip":
                return False
            k = link[k] - 1
        return True

    for i in range(len(link)):
        if ops[i] != "skip":
            continue
        son = any(fa == i + 1 for fa in link)
        brother = any(j != i and fa == link[i] and fa != i + 1 for j, fa in enumerate(link))
        if son or not brother or (reads_input_through_skips(i, link, ops) and not son):
            link, ops = move_one(i, link, ops)
    if link == [0, 1, 2, 1]:
        link, ops = [0, 1, 1, 2], ops[:2] + [ops[3], ops[2]]
    elif link == [0, 1, 1, 3]:
        link, ops = [0, 1, 1, 2], [ops[0], ops[2], ops[1], ops[3]]
    return link, ops


def _sort_equal_parts(link: list[int], ops: list[str]) -> list[str]:
    """The wheel's Arch.equalpart_sort: interchangeable layers in op-list order."""
    order = {name: i for i, name in enumerate(OPS)}
    ops = list(ops)
    interchangeable = {
        (0, 0, 0, 0): [0, 1, 2, 3], (0, 0, 0, 1): [1, 2], (0, 0, 1, 1): [2, 3],
        (0, 1, 1, 1): [1, 2, 3], (0, 1, 2, 2): [2, 3],
    }.get(tuple(link))
    if tuple(link) == (0, 0, 1, 2):
        # Two chains input->a->c and input->b->d: swap them into order.
        if order[ops[0]] > order[ops[1]] or (ops[0] == ops[1] and order[ops[2]] > order[ops[3]]):
            ops = [ops[1], ops[0], ops[3], ops[2]]
    elif interchangeable:
        for position, op in zip(interchangeable, sorted((ops[i] for i in interchangeable), key=order.__getitem__)):
            ops[position] = op
    return ops


def canonical_hash(link: Sequence[int], ops: Sequence[str]) -> int:
    """The table key of cell (link, ops): the wheel's `Arch(link, ops).valid_hash()`."""
    link, ops = _regularize(list(link), list(ops))
    link, ops = _move_skip_ops(link, ops)
    ops = _sort_equal_parts(link, ops)
    if tuple(link) not in CANONICAL_LINKS:
        raise ValueError(f"Link pattern {link} did not regularise to a canonical one: {CANONICAL_LINKS}")
    key = CANONICAL_LINKS.index(tuple(link))
    for op in ops:
        key = key * (len(OPS) + 1) + OPS.index(op)
    return key


def cell_of(values: Mapping[str, Any]) -> tuple[list[int], list[str]]:
    link = [0, int(values["link_1"]), int(values["link_2"]), int(values["link_3"])]
    return link, [str(values[f"op_{i}"]) for i in range(4)]


def _key(values: Mapping[str, Any]) -> str:
    link, ops = cell_of(values)
    return "all-skip" if all(op == "skip" for op in ops) else f"nbg-{canonical_hash(link, ops)}"


def make_space() -> CategoricalSpace:
    """7 decisions in the cell's order: op_0, link_1, op_1, link_2, op_2, link_3, op_3."""
    decisions = [("op_0", OPS)]
    for i in (1, 2, 3):
        decisions += [(f"link_{i}", tuple(range(i + 1))), (f"op_{i}", OPS)]
    return CategoricalSpace("nas-bench-graph", decisions, key=_key)


class _NumpyScalarUnpickler(pickle.Unpickler):
    _ALLOWED = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"NAS-Bench-Graph tables hold only numbers; refusing to load {module}.{name}"
            )
        if name == "scalar":
            from numpy._core.multiarray import scalar
            return scalar
        return np.dtype


@dataclasses.dataclass(frozen=True)
class Entry:
    valid: float
    test: float
    latency: float
    params: float


class TabularBenchmark:
    """One dataset's table: architecture key -> measured validation/test accuracy, cost."""

    def __init__(self, dataset: str, directory: str | None = None):
        check_choice("dataset", dataset, DATASETS, hint=" (NAS-Bench-Graph; 'proteins' has another space)")
        directory = directory or os.environ.get("NAS_BENCH_GRAPH_DIR", DEFAULT_DIR)
        path = os.path.join(directory, f"{dataset}.bench")
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"NAS-Bench-Graph table {path} is missing. Run `make nas-bench-graph` (unpacks the "
                "nas-bench-graph==1.4.0 wheel into .data/nas_bench_graph) or set NAS_BENCH_GRAPH_DIR"
            )
        with open(path, "rb") as f:
            raw = _NumpyScalarUnpickler(f).load()
        self.dataset = dataset
        self.space = make_space()
        self.table = {
            f"nbg-{int(k)}": Entry(float(v["valid_perf"]), float(v["perf"]), float(v["latency"]), float(v["para"]))
            for k, v in raw.items()
        }
        valid = np.array([e.valid for e in self.table.values()])
        self.best_valid = float(valid.max())
        self.top1_threshold = float(np.quantile(valid, 0.99))  # a top-1% architecture scores >= this

    def lookup(self, values: Mapping[str, Any]) -> Entry:
        key = self.space.architecture_key(values)
        if key == "all-skip":
            return Entry(ALL_SKIP_SCORE, ALL_SKIP_SCORE, 0.0, 0.0)
        if key not in self.table:
            raise KeyError(f"Architecture {dict(values)} (key {key}) is not in the {self.dataset} table")
        return self.table[key]


@dataclasses.dataclass
class SearchTrace:
    """One search on a table, per trained (distinct) architecture in training order."""

    valid: list[float]
    test: list[float]
    latency: list[float]
    rewards: list[float]
    num_cache_hits: int
    stopped_early: bool


def run_search(oracle, benchmark: TabularBenchmark, budget: int, directory: str,
               reward=None, persist: bool = True) -> SearchTrace:
    """Drive `oracle` through keras-tuner's protocol, scoring each trial by table lookup.

    create_trial -> lookup -> update_trial -> end_trial, exactly what a worker does with a
    trained child; `oracle.max_trials` should be `budget`. `reward(entry)` turns a table
    entry into the reported objective (default: validation accuracy), e.g. a cost-aware
    reward. The reward cache keys rewards by this dataset (and reward) as the recipe.
    `persist=False` skips keras-tuner's oracle.json / trial.json writes (70% of a lookup
    search's time; the proposals are the same, resume is tested with persist=True).
    """
    import keras_tuner

    from tuner import keras_tuner_internals as internals

    status = keras_tuner.engine.trial.TrialStatus
    oracle.verbose = 0  # keras-tuner's per-trial table
    internals.set_project_dir(oracle, directory, "search")  # what a Tuner would do
    if not persist:
        internals.skip_state_files(oracle)
    oracle.set_recipe(f"nas-bench-graph/{benchmark.dataset}/{getattr(reward, '__name__', 'valid')}")
    valid, test, latency, rewards = [], [], [], []
    stopped = False
    while len(valid) < budget:
        trial = oracle.create_trial("benchmark")
        if trial.status != status.RUNNING:
            stopped = True
            break
        entry = benchmark.lookup(trial.hyperparameters.values)
        score = entry.valid if reward is None else float(reward(entry))
        oracle.update_trial(trial.trial_id, {oracle.objective.name: score})
        trial.status = status.COMPLETED
        oracle.end_trial(trial)
        valid.append(entry.valid)
        test.append(entry.test)
        latency.append(entry.latency)
        rewards.append(score)
    return SearchTrace(valid, test, latency, rewards, int(getattr(oracle, "num_cache_hits", 0)), stopped)


def cost_aware_reward(target_latency: float, weight: float, weight_below: float | None = None):
    """A `run_search` reward: validation accuracy x (latency / target)^w (`tuner.cost`)."""
    from tuner.cost import cost_aware_reward as reward

    def latency_reward(entry: Entry) -> float:
        return reward(entry.valid, entry.latency, target_latency, weight, weight_below)

    latency_reward.__name__ = f"latency<={target_latency:.6g},w={weight},{weight_below}"
    return latency_reward
