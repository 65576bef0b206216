"""PPO (the paper's controller) vs. random search with the same budget, on a real proxy task.

    .venv/bin/python benchmarks/search.py                       # ~10 min on a 2-core CPU
    .venv/bin/python benchmarks/search.py --trials 60 --num-blocks 5  # longer, more telling

Both strategies search the same space with the same child recipe, the same data split and
the same child weight seed, one after the other in this process, so the only difference
is which architectures they sample. The task is a proxy (Fashion-MNIST subset, tiny
children, few epochs): the paper's comparison (Fig. 6: RL > RS by >1% at the top, after
thousands of 20-epoch CIFAR-10 children) cannot be reproduced at this budget, and a
few-dozen-trial run mostly measures sampling noise. The table says what happened; read
differences smaller than the spread of rewards as ties.

Prints one table: for several budgets, the best-so-far and the top-5 mean of unique
architectures for each strategy, then each strategy's mean reward per quarter of the run
(if PPO learns, its later quarters score higher than random's). Writes the Figure-6-style
`search_curve.png` with both strategies into `--directory`.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # run as a script from anywhere: `tuner` lives at the repo root
    sys.path.insert(0, REPO)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12, help="children per strategy (the budget)")
    parser.add_argument("--num-blocks", type=int, default=3, help="B of the search space (paper: 5)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per child")
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--subset", type=int, default=512, help="training images per child")
    parser.add_argument("--validation-size", type=int, default=256, help="held-out training images (the reward)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.1, help="children's initial cosine rate")
    parser.add_argument("--controller-batch", type=int, default=4, help="children per PPO update (paper: 20)")
    parser.add_argument("--controller-lr", type=float, default=None, help="PPO learning rate (paper: 0.00035)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--directory", default=os.path.join("runs", "benchmark_search"))
    parser.add_argument("--resume", action="store_true", help="continue earlier runs in --directory")
    return parser.parse_args(argv)


def _fmt(value: float) -> str:
    return "   -  " if value is None or math.isnan(value) else f"{value:.4f}"


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from nasnet_keras import data
    from tuner import history
    from tuner.children import ChildConfig
    from tuner.oracles import make_oracle
    from tuner.search import NASTuner
    from tuner.space import SearchSpace

    info = data.info("fashion_mnist")
    train, validation = data.search_split("fashion_mnist", validation_size=args.validation_size, subset=args.subset,
                                          seed=args.seed)
    space = SearchSpace(num_blocks=args.num_blocks)
    config = ChildConfig(classes=info.num_classes, num_cells=1, filters=args.filters, epochs=args.epochs,
                         batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed)
    print(f"Proxy task: Fashion-MNIST, {args.subset} training / {args.validation_size} held-out images of the "
          f"training split; children B={args.num_blocks}, N=1, F={args.filters}, {args.epochs} epoch(s); "
          f"{args.trials} trials per strategy", flush=True)
    records, seconds = {}, {}
    for strategy in ("random", "ppo"):
        options = {"batch_size": args.controller_batch, "learning_rate": args.controller_lr} if strategy == "ppo" else {}
        oracle = make_oracle(strategy, space, max_trials=args.trials, seed=args.seed,
                             max_consecutive_failed_trials=args.trials, **options)
        tuner = NASTuner(oracle, config, strategy=strategy, directory=args.directory, overwrite=not args.resume,
                         fit_verbose=0, log=lambda line, s=strategy: print(f"[{s}] {line}", flush=True),
                         run_info={"dataset": "fashion_mnist", "subset": args.subset,
                                   "validation_size": args.validation_size, "seed": args.seed})
        start = time.perf_counter()
        tuner.search(train, validation)
        seconds[strategy] = time.perf_counter() - start
        records[strategy] = history.read_trials(tuner.project_dir)

    budgets = sorted({max(1, args.trials // 4), max(1, args.trials // 2), max(1, 3 * args.trials // 4), args.trials})
    curves = {s: history.curves(r, (1, 5)) for s, r in records.items()}
    print("\nheld-out accuracy of the best / top-5 mean unique architectures after n trials")
    print(f"{'n trials':>8} | {'PPO best':>8} {'RS best':>8} {'diff':>7} | {'PPO top5':>8} {'RS top5':>8} {'diff':>7}")
    print("-" * 64)
    for n in budgets:
        row = [curves[s][k][n - 1] if n <= len(curves[s][k]) else math.nan for k in (1, 5) for s in ("ppo", "random")]
        d1, d5 = row[0] - row[1], row[2] - row[3]
        print(f"{n:>8} | {_fmt(row[0]):>8} {_fmt(row[1]):>8} {d1:+7.4f} | {_fmt(row[2]):>8} {_fmt(row[3]):>8} "
              f"{'   -   ' if math.isnan(d5) else f'{d5:+7.4f}'}")
    print("\nmean reward per quarter of the run (completed children), failures, unique models, wall time")
    for strategy in ("ppo", "random"):
        scores = [r.score if r.scored else math.nan for r in records[strategy]]
        quarters = []
        for q in range(4):
            part = [s for s in scores[q * len(scores) // 4:(q + 1) * len(scores) // 4] if not math.isnan(s)]
            quarters.append(_fmt(statistics.mean(part)) if part else "   -  ")
        failed = sum(1 for r in records[strategy] if not r.scored)
        unique = len({r.genotype_id for r in records[strategy]})
        spread = statistics.pstdev([s for s in scores if not math.isnan(s)] or [0.0])
        print(f"{strategy:>8} | quarters {' '.join(quarters)} | std {spread:.4f} | failed {failed} | "
              f"unique {unique} | {seconds[strategy]:.0f} s")
    from tuner.search import write_search_curve

    print(f"\ncurves: {write_search_curve(args.directory)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
