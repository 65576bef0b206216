"""Wall time of the controller's two hot paths against the 1 s budget (issue 3).

The paper's search updates the controller every 20 children (App. A.3); sampling those
20 architectures plus one PPO update on them must stay well under a second on a CPU so
the chief never holds up GPU workers. Measured here: medians over repeats after warm-up
(tracing happens once per process and shape, and is reported separately), for the
paper's B=5 space (50 decisions), a 100-unit LSTM and the default PPO settings. For
reference, the same sampling code run eagerly (untraced) in the same process.

    .venv/bin/python benchmarks/controller.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tuner.controller import Controller  # noqa: E402
from tuner.ppo import PPO  # noqa: E402
from tuner.space import SearchSpace  # noqa: E402

TARGET_S = 1.0


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch", type=int, default=20, help="architectures per PPO update (paper: 20)")
    args = parser.parse_args(argv)

    space = SearchSpace()
    controller = Controller(space.sizes, seed=0)
    ppo = PPO(controller, batch_size=args.batch)
    rng = np.random.default_rng(0)

    def sample():
        return controller.sample(args.batch, rng=rng)

    def one_update():
        decisions, log_probs = sample()
        for d, lp in zip(decisions[:-1], log_probs[:-1]):
            ppo.observe(d, lp, float(rng.random()))
        start = time.perf_counter()
        assert ppo.observe(decisions[-1], log_probs[-1], float(rng.random()))
        return time.perf_counter() - start

    start = time.perf_counter()
    sample()
    first_sample = time.perf_counter() - start
    first_update = one_update()

    sample_s = median_time(sample, args.repeats)
    update_s = statistics.median(one_update() for _ in range(args.repeats))
    one_by_one_s = median_time(lambda: [controller.sample(1, rng=rng) for _ in range(args.batch)], max(3, args.repeats // 4))

    weights = tuple(controller.trainable_variables)
    gumbel = tf.constant(rng.gumbel(size=(args.batch, len(space.sizes), max(space.sizes))), tf.float32)
    eager_s = median_time(lambda: controller._graphs.sample_graph(weights, gumbel), 3)

    rows = [
        (f"sample {args.batch} architectures (batched)", sample_s),
        (f"PPO update on {args.batch} ({ppo.epochs} epochs)", update_s),
        (f"sample {args.batch} + one PPO update", sample_s + update_s),
        (f"sample {args.batch} one at a time (as the oracle does)", one_by_one_s),
        (f"reference: sample {args.batch}, same code eager (untraced)", eager_s),
        ("first sample call (tracing, once per process)", first_sample),
        ("first PPO update (tracing, once per process)", first_update),
    ]
    print(f"Controller: B={space.num_blocks}, {len(space.sizes)} decisions, LSTM {controller.units} units; "
          f"median of {args.repeats} after warm-up; {os.cpu_count()} CPU cores\n")
    print(f"| {'operation':<58} | {'ms':>8} | {'target':<10} |")
    print(f"|{'-' * 60}|{'-' * 10}|{'-' * 12}|")
    for name, seconds in rows:
        target = ""
        if name.startswith(f"sample {args.batch} + one"):
            target = f"< {TARGET_S:g} s " + ("ok" if seconds < TARGET_S else "MISSED")
        print(f"| {name:<58} | {1000 * seconds:8.1f} | {target:<10} |")
    print(f"\nbudget: sampling + update {1000 * (sample_s + update_s):.0f} ms of {1000 * TARGET_S:.0f} ms; "
          f"traced sampling is {eager_s / sample_s:.0f}x faster than eager")


if __name__ == "__main__":
    main()
