"""A search effect a user can see in seconds: strategies on NAS-Bench-Graph, side by side.

A 10-child search of tiny one-epoch NASNet children is mostly noise; the same oracles on a
table of *measured* accuracies (`tuner.benchmark_tabular`) show what the strategy does
with a few hundred children. Used by `nasnet demo`; `benchmarks/strategies.py` is the
full benchmark (50 seeds, held-out datasets, confidence intervals).
"""

from __future__ import annotations

import tempfile
import time
from typing import Callable

import numpy as np

# The demo's comparison: the default strategy against its baseline (PPO's TF updates would
# double the stage's time; benchmarks/strategies.py reports it).
DEMO_STRATEGIES = ("evolution", "random")


def compare_on_tabular(dataset: str = "cora", seeds: int = 10, budget: int = 100,
                       strategies=DEMO_STRATEGIES, log: Callable[[str], None] = print) -> dict:
    """Mean best validation accuracy after 25/50/100 trained architectures, per strategy."""
    from tuner.benchmark_tabular import TabularBenchmark, run_search
    from tuner.oracles import make_oracle

    bench = TabularBenchmark(dataset)
    checkpoints = [n for n in (10, 25, 50, 100, 200, 500) if n <= budget]
    log(f"NAS-Bench-Graph {dataset}: {len(bench.table)} architectures with measured accuracy "
        f"(best {bench.best_valid:.4f}); {seeds} seeds x {budget} architectures per strategy")
    log(f"{'strategy':<12}" + "".join(f"{'best@' + str(n):>11}" for n in checkpoints) + f"{'cache hits':>12}{'seconds':>9}")
    results = {}
    for strategy in strategies:
        started = time.perf_counter()
        curves, hits = [], []
        for seed in range(seeds):
            with tempfile.TemporaryDirectory() as directory:
                oracle = make_oracle(strategy, bench.space, max_trials=budget, seed=seed + 1)
                trace = run_search(oracle, bench, budget, directory, persist=False)
            best = np.maximum.accumulate(trace.valid)
            curves.append(np.concatenate([best, np.full(budget - len(best), best[-1])]))
            hits.append(trace.num_cache_hits)
        mean = np.mean(curves, axis=0)
        results[strategy] = {n: float(mean[n - 1]) for n in checkpoints}
        log(f"{strategy:<12}" + "".join(f"{mean[n - 1]:>11.4f}" for n in checkpoints)
            + f"{np.mean(hits):>12.1f}{time.perf_counter() - started:>9.1f}")
    return results
