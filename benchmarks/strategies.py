"""Search strategies on real tabular data: NAS-Bench-Graph, through the real keras-tuner oracles.

Every strategy runs as the oracle users run (`tuner.oracles.make_oracle`, reward cache
on), driven by create_trial / update_trial / end_trial with trials scored by table lookup
(`tuner.benchmark_tabular`). The x axis is *distinct architectures trained* (cache hits
are free), as in the paper's Figure 6.

    # the report: held-out datasets, 50 seeds, Figure 6-style PNG
    python benchmarks/strategies.py --out runs/strategies
    # the settings sweep on the tuning datasets (chooses tuner/presets.py "default")
    python benchmarks/strategies.py --sweep --seeds 3 --budget 200 --out runs/strategies_sweep
    # the hardware-aware reward: latency target on the held-out datasets
    python benchmarks/strategies.py --target-latency 0.5 --out runs/strategies_cost

Tuning datasets (settings chosen): cora, citeseer, pubmed. Reported (held out):
computers, photo, cs, physics, arxiv. Statistics over seeds: mean, 95% t-interval.
At most `--processes` (default 2) worker processes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

TUNING = ("cora", "citeseer", "pubmed")
HELD_OUT = ("computers", "photo", "cs", "physics", "arxiv")
CHECKPOINTS = (25, 50, 100, 200, 500)

# name -> (strategy, preset, overrides)
REPORTED = {
    "evolution (default)": ("evolution", "default", {}),
    "evolution (paper P=100 S=25)": ("evolution", "paper", {}),
    "ppo (default)": ("ppo", "default", {}),
    "ppo (paper)": ("ppo", "paper", {}),
    "random": ("random", "default", {}),
}


def sweep_configs() -> dict:
    """The settings compared on the tuning datasets (a grid pruned to fit a shared 2-core machine)."""
    configs = {"random": ("random", "default", {})}
    ppo = {
        "ppo paper (lr=0.00035 batch=20 norm=0)": {},
        "ppo lr=0.003 batch=20 norm=0": {"learning_rate": 0.003},
        "ppo lr=0.001 batch=20 norm=1": {"learning_rate": 0.001, "normalize_advantages": True},
        "ppo lr=0.003 batch=20 norm=1": {"learning_rate": 0.003, "normalize_advantages": True},
        "ppo lr=0.01 batch=20 norm=1": {"learning_rate": 0.01, "normalize_advantages": True},
        "ppo lr=0.003 batch=5 norm=1": {"learning_rate": 0.003, "batch_size": 5, "normalize_advantages": True},
        "ppo lr=0.003 batch=20 norm=1 entropy=0.01": {"learning_rate": 0.003, "normalize_advantages": True,
                                                      "entropy_weight": 0.01},
        "ppo lr=0.01 batch=20 norm=1 entropy=0.01": {"learning_rate": 0.01, "normalize_advantages": True,
                                                     "entropy_weight": 0.01},
    }
    for name, overrides in ppo.items():
        configs[name] = ("ppo", "paper", overrides)
    for population, sample in ((10, 2), (10, 5), (20, 2), (20, 5), (50, 2), (50, 5), (100, 25)):
        configs[f"evolution P={population} S={sample}"] = (
            "evolution", "default", {"population_size": population, "sample_size": sample})
    return configs


_BENCHMARKS: dict = {}


def oracle_seed(strategy: str, seed: int) -> int:
    """keras-tuner's random oracle draws value k of a trial with `random.Random(seed + k)`
    (its `_seed_state` counts up by one per value), so seeds s and s + 7 replay the same
    stream one trial apart; spacing them past any budget makes the random runs independent.
    PPO and evolution seed numpy generators with [seed, counter] and need no spacing."""
    return 1 + 100003 * seed if strategy == "random" else seed + 1


def _job(job: dict) -> dict:
    """One search (runs in a worker process)."""
    from tuner.benchmark_tabular import TabularBenchmark, cost_aware_reward, run_search
    from tuner.oracles import make_oracle

    dataset = job["dataset"]
    if dataset not in _BENCHMARKS:
        _BENCHMARKS[dataset] = TabularBenchmark(dataset)
    bench = _BENCHMARKS[dataset]
    reward = None
    if job.get("target_latency"):
        reward = cost_aware_reward(job["target_latency_abs"], job["weight"], job.get("weight_below"))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as directory:
        oracle = make_oracle(job["strategy"], bench.space, preset=job["preset"], max_trials=job["budget"],
                             seed=oracle_seed(job["strategy"], job["seed"]), **job["overrides"])
        trace = run_search(oracle, bench, job["budget"], directory, reward=reward, persist=False)
    return {**job, "valid": trace.valid, "test": trace.test, "latency": trace.latency,
            "rewards": trace.rewards, "hits": trace.num_cache_hits, "stopped": trace.stopped_early,
            "seconds": time.perf_counter() - started}


def _ci(values) -> tuple[float, float]:
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), float("nan")
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean()), float(half)


def best_so_far(result: dict, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Best validation accuracy, and the test accuracy of that architecture, after n trained."""
    valid, test = np.asarray(result["valid"]), np.asarray(result["test"])
    order = np.zeros(len(valid), dtype=int)
    best = -np.inf
    for i, v in enumerate(valid):
        if v > best:
            best, order[i] = v, i
        else:
            order[i] = order[i - 1]
    best_valid, best_test = valid[order], test[order]
    if len(valid) < budget:  # the search stopped early (converged onto known architectures): carry on
        pad = budget - len(valid)
        best_valid = np.concatenate([best_valid, np.full(pad, best_valid[-1])])
        best_test = np.concatenate([best_test, np.full(pad, best_test[-1])])
    return best_valid[:budget], best_test[:budget]


def summarise(results: list[dict], tables: dict) -> dict:
    """{dataset: {config: {"valid": (n, seeds), "test": ..., "top1": ..., "hits": ...}}}"""
    out: dict = {}
    for r in results:
        budget = r["budget"]
        valid, test = best_so_far(r, budget)
        entry = out.setdefault(r["dataset"], {}).setdefault(r["config"], {"valid": [], "test": [], "top1": [],
                                                                        "hits": [], "stopped": 0, "seconds": []})
        entry["valid"].append(valid)
        entry["test"].append(test)
        entry["top1"].append(valid >= tables[r["dataset"]]["top1"])
        entry["hits"].append(r["hits"])
        entry["stopped"] += int(r["stopped"])
        entry["seconds"].append(r["seconds"])
    for per_config in out.values():
        for entry in per_config.values():
            for k in ("valid", "test", "top1"):
                entry[k] = np.stack(entry[k])
    return out


def format_table(dataset: str, per_config: dict, tables: dict) -> str:
    cols = [n for n in CHECKPOINTS if any(e["valid"].shape[1] >= n for e in per_config.values())]
    head = (f"### {dataset} (table best valid {tables[dataset]['best']:.4f}, top-1% >= {tables[dataset]['top1']:.4f})\n\n"
            "| strategy | seeds | " + " | ".join(f"best valid @{n}" for n in cols)
            + " | test of best @last | " + " | ".join(f"P(top1%) @{n}" for n in cols[2:])
            + " | cache hits | s/seed |\n")
    head += "|" + "---|" * (4 + len(cols) + len(cols[2:])) + "\n"
    lines = []
    for name, e in per_config.items():
        cells = []
        budget = e["valid"].shape[1]
        for n in cols:
            m, h = _ci(e["valid"][:, n - 1]) if n <= budget else (math.nan, math.nan)
            cells.append(f"{m:.4f} ± {h:.4f}" if n <= budget else "-")
        last = min(cols[-1], budget)
        tm, th = _ci(e["test"][:, last - 1])
        top = [f"{e['top1'][:, n - 1].mean():.2f}" if n <= budget else "-" for n in cols[2:]]
        lines.append(f"| {name} | {len(e['valid'])} | " + " | ".join(cells) + f" | {tm:.4f} ± {th:.4f} | "
                     + " | ".join(top) + f" | {np.mean(e['hits']):.0f} | {np.median(e['seconds']):.1f} |")
    return head + "\n".join(lines) + "\n"


def target_check(dataset: str, per_config: dict, default: str, random: str = "random") -> str:
    d, r = per_config[default]["valid"], per_config[random]["valid"]
    lines = []
    for n in (100, 200):
        if r.shape[1] < 2 * n or d.shape[1] < n:
            continue
        dm, dh = _ci(d[:, n - 1])
        rm, rh = _ci(r[:, 2 * n - 1])
        ok_mean = dm >= rm
        ok_ci = (dm - dh) > (rm + rh)
        lines.append(f"{dataset}: {default} @{n} = {dm:.4f} ± {dh:.4f} vs random @{2 * n} = {rm:.4f} ± {rh:.4f}: "
                     f"mean {'>=' if ok_mean else '<'} random" + (f", 95% CIs {'do not overlap' if ok_ci else 'overlap'}"
                                                                   if n == 200 else ""))
    return "\n".join(lines)


def plot(summary: dict, datasets, path: str, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = [d for d in datasets if d in summary]
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.6), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for name, e in summary[dataset].items():
            v = e["valid"]
            n = np.arange(1, v.shape[1] + 1)
            mean = v.mean(axis=0)
            from scipy import stats

            half = stats.t.ppf(0.975, len(v) - 1) * v.std(axis=0, ddof=1) / math.sqrt(len(v))
            keep = n <= 500
            ax.plot(n[keep], mean[keep], label=name, lw=1.4)
            ax.fill_between(n[keep], (mean - half)[keep], (mean + half)[keep], alpha=0.2)
        ax.set_xscale("log")
        ax.set_xlabel("distinct architectures trained")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("best validation accuracy (mean, 95% CI)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_jobs(jobs: list[dict], processes: int) -> list[dict]:
    if processes <= 1:
        return [_job(j) for j in jobs]
    results, started = [], time.perf_counter()
    with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn")) as pool:
        for i, result in enumerate(pool.map(_job, jobs, chunksize=2), 1):
            results.append(result)
            if i % max(1, len(jobs) // 20) == 0:
                print(f"  {i}/{len(jobs)} searches, {time.perf_counter() - started:.0f} s", flush=True)
    return results


def sweep_score(summary: dict, tables: dict, name: str) -> float:
    """Mean regret (table best - best found) over tuning datasets at 100 and 200 trained."""
    regrets = []
    for dataset, per_config in summary.items():
        v = per_config[name]["valid"]
        regrets += [tables[dataset]["best"] - v[:, n - 1].mean() for n in (100, 200) if n <= v.shape[1]]
    return float(np.mean(regrets))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=None,
                        help=f"comma-separated (default: held out {','.join(HELD_OUT)}; with --sweep: "
                             f"tuning {','.join(TUNING)})")
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--budget", type=int, default=500, help="distinct architectures per search")
    parser.add_argument("--ppo-budget", type=int, default=None,
                        help="PPO's budget if smaller (its updates cost TF time; default --budget)")
    parser.add_argument("--random-budget", type=int, default=1000,
                        help="random search's budget (2x, for the 'default at n >= random at 2n' target)")
    parser.add_argument("--strategies", default=None, help=f"comma-separated subset of: {', '.join(REPORTED)}")
    parser.add_argument("--sweep", action="store_true", help="the settings sweep (use the tuning datasets)")
    parser.add_argument("--target-latency", type=float, default=None,
                        help="cost-aware reward: target latency as a quantile of the table's latencies (e.g. 0.3)")
    parser.add_argument("--weight", type=float, default=-0.07, help="w of acc x (latency/target)^w (MnasNet: -0.07)")
    parser.add_argument("--weight-below", type=float, default=None,
                        help="w where latency <= target (default: --weight, MnasNet's soft; 0 with --weight -1: hard)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", default="runs/strategies")
    parser.add_argument("--from-results", default=None,
                        help="comma-separated results.json files of earlier runs: tabulate them instead of running")
    args = parser.parse_args(argv)

    from tuner.benchmark_tabular import DATASETS, TabularBenchmark

    datasets = tuple(args.datasets.split(",")) if args.datasets else (TUNING if args.sweep else HELD_OUT)
    for d in datasets:
        if d not in DATASETS:
            raise ValueError(f"Unknown dataset {d!r}. Accepted: {', '.join(DATASETS)}")
    if args.sweep and set(datasets) & set(HELD_OUT):
        print(f"WARNING: sweeping on held-out datasets {sorted(set(datasets) & set(HELD_OUT))}")
    configs = sweep_configs() if args.sweep else dict(REPORTED)
    if args.strategies:
        wanted = args.strategies.split(",")
        unknown = [w for w in wanted if w not in configs]
        if unknown:
            raise ValueError(f"Unknown --strategies {unknown}. Accepted: {', '.join(configs)}")
        configs = {k: configs[k] for k in wanted}
    tables = {}
    for d in datasets:
        bench = TabularBenchmark(d)
        lat = np.array([e.latency for e in bench.table.values()])
        tables[d] = {"best": bench.best_valid, "top1": bench.top1_threshold,
                     "target_latency": float(np.quantile(lat, args.target_latency)) if args.target_latency else None}
    jobs = []
    for d in datasets:
        for name, (strategy, preset, overrides) in configs.items():
            budget = args.random_budget if strategy == "random" and not args.sweep else args.budget
            if strategy == "ppo" and args.ppo_budget:
                budget = min(budget, args.ppo_budget)
            for seed in range(args.seeds):
                jobs.append({"dataset": d, "config": name, "strategy": strategy, "preset": preset,
                             "overrides": overrides, "seed": seed, "budget": budget,
                             "target_latency": args.target_latency,
                             "target_latency_abs": tables[d]["target_latency"], "weight": args.weight,
                             "weight_below": args.weight_below})
    if args.from_results:
        results = []
        for path in args.from_results.split(","):
            with open(path, encoding="utf-8") as f:
                results += [r for r in json.load(f) if r["dataset"] in datasets and r["config"] in configs]
        jobs = []
    started = time.perf_counter()
    print(f"{len(jobs)} searches on {', '.join(datasets)} ({len(configs)} settings x {args.seeds} seeds), "
          f"{args.processes} processes", flush=True)
    if not args.from_results:
        results = run_jobs(jobs, args.processes)
    seconds = time.perf_counter() - started
    os.makedirs(args.out, exist_ok=True)
    summary = summarise(results, tables)
    report = [f"# NAS-Bench-Graph strategy benchmark ({'sweep' if args.sweep else 'report'})\n",
              f"datasets: {', '.join(datasets)}; seeds: {args.seeds}; budget: {args.budget} distinct architectures "
              f"(random: {args.random_budget if not args.sweep else args.budget}); wall {seconds:.0f} s, "
              f"{args.processes} processes\n"]
    if args.target_latency:
        report.append(cost_report(results, tables, args))
    else:
        for d in datasets:
            report.append(format_table(d, summary[d], tables))
        report.append("## Target: default at n >= random at 2n\n")
        for name in ("evolution (default)", "ppo (default)"):
            if name in configs and "random" in configs:
                report.append("\n".join(target_check(d, summary[d], name) for d in datasets) + "\n")
    if args.sweep:
        ranked = sorted((sweep_score(summary, tables, name), name) for name in configs)
        report.append("## Sweep ranking (mean regret over tuning datasets at 100/200; lower is better)\n")
        report.append("| rank | settings | mean regret |\n|---|---|---|\n" + "\n".join(
            f"| {i} | {name} | {score:.4f} |" for i, (score, name) in enumerate(ranked, 1)) + "\n")
    text = "\n".join(report)
    print(text)
    with open(os.path.join(args.out, "strategies.md"), "w", encoding="utf-8") as f:
        f.write(text)
    if not args.sweep and not args.target_latency:
        png = plot(summary, datasets, os.path.join(args.out, "strategies_fig6.png"),
                   "NAS-Bench-Graph: best validation accuracy vs architectures trained (held-out datasets)")
        print(f"Figure 6-style plot: {png}")
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f)
    return 0


def cost_report(results: list[dict], tables: dict, args) -> str:
    """Share of the top-10 (by reward) architectures found within the latency target."""
    below = args.weight if args.weight_below is None else args.weight_below
    lines = [f"## Cost-aware reward: acc x (latency / target)^w, w = {args.weight} above and {below} below the "
             "target; target = the "
             f"{args.target_latency:.0%} latency quantile of each table\n",
             "| dataset | strategy | within target among top-10 found (mean over seeds) | "
             "median latency / target of top-10 | within target among the top-10 by accuracy of the same runs |\n"
             "|---|---|---|---|---|"]
    groups: dict = {}
    for r in results:
        groups.setdefault((r["dataset"], r["config"]), []).append(r)
    for (dataset, name), runs in groups.items():
        target = tables[dataset]["target_latency"]
        within, ratio, plain = [], [], []
        for r in runs:
            lat, rew, val = np.array(r["latency"]), np.array(r["rewards"]), np.array(r["valid"])
            top = np.argsort(-rew)[:10]
            within.append(np.mean(lat[top] <= target))
            ratio.append(np.median(lat[top] / target))
            top_plain = np.argsort(-val)[:10]
            plain.append(np.mean(lat[top_plain] <= target))
        lines.append(f"| {dataset} | {name} | {np.mean(within):.2f} | {np.median(ratio):.2f} | {np.mean(plain):.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
