"""Wall time of the controller's two hot paths against the 1 s budget (issue 3).

The paper's search updates the controller every 20 children (App. A.3); sampling those
20 architectures plus one PPO update on them must stay well under a second on a CPU so
the chief never holds up GPU workers. Measured here: medians over repeats after warm-up
(tracing happens once per process and shape, and is reported separately), for the
paper's B=5 space (50 decisions), a 100-unit LSTM and the default PPO settings. For
reference, the same sampling code run eagerly (untraced) in the same process.

    .venv/bin/python benchmarks/controller.py [--repeats 20] [--threads 1]

`--threads 1` gives TensorFlow's thread pools one thread each, as a distributed search's
chief does (`tuner.distributed.use_chief_threads`); CPU is the whole process's CPU time.
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
from tuner.distributed import set_tf_thread_pools  # noqa: E402
from tuner.ppo import PPO  # noqa: E402
from tuner.space import SearchSpace  # noqa: E402

TARGET_S = 1.0


def timed(fn) -> tuple[float, float]:
    """(wall, process CPU) seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def median_time(fn, repeats: int) -> tuple[float, float]:
    """Median wall and median CPU seconds over `repeats` calls."""
    times = [timed(fn) for _ in range(repeats)]
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch", type=int, default=20, help="architectures per PPO update (paper: 20)")
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow intra- and inter-op threads (0: TensorFlow's default; 1: as the chief)")
    args = parser.parse_args(argv)
    if args.threads:
        set_tf_thread_pools(args.threads)

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
        return timed(lambda: ppo.observe(decisions[-1], log_probs[-1], float(rng.random())))

    first_sample = timed(sample)
    first_update = one_update()

    sample_s = median_time(sample, args.repeats)
    updates = [one_update() for _ in range(args.repeats)]
    update_s = statistics.median(t[0] for t in updates), statistics.median(t[1] for t in updates)
    one_by_one_s = median_time(lambda: [controller.sample(1, rng=rng) for _ in range(args.batch)], max(3, args.repeats // 4))

    weights = tuple(controller.trainable_variables)
    gumbel = tf.constant(rng.gumbel(size=(args.batch, len(space.sizes), max(space.sizes))), tf.float32)
    eager_s = median_time(lambda: controller._graphs.sample_graph(weights, gumbel), 3)

    rows = [
        (f"sample {args.batch} architectures (batched)", sample_s),
        (f"PPO update on {args.batch} ({ppo.epochs} epochs)", update_s),
        (f"sample {args.batch} + one PPO update", (sample_s[0] + update_s[0], sample_s[1] + update_s[1])),
        (f"sample {args.batch} one at a time (as the oracle does)", one_by_one_s),
        (f"reference: sample {args.batch}, same code eager (untraced)", eager_s),
        ("first sample call (tracing, once per process)", first_sample),
        ("first PPO update (tracing, once per process)", first_update),
    ]
    threads = f"{args.threads} TensorFlow thread(s) per pool" if args.threads else "TensorFlow's default thread pools"
    print(f"Controller: B={space.num_blocks}, {len(space.sizes)} decisions, LSTM {controller.units} units; "
          f"median of {args.repeats} after warm-up; {os.cpu_count()} CPU cores, {threads}; load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print(f"| {'operation':<58} | {'wall ms':>8} | {'CPU ms':>8} | {'target':<10} |")
    print(f"|{'-' * 60}|{'-' * 10}|{'-' * 10}|{'-' * 12}|")
    for name, (wall, cpu) in rows:
        target = ""
        if name.startswith(f"sample {args.batch} + one"):
            target = f"< {TARGET_S:g} s " + ("ok" if wall < TARGET_S else "MISSED")
        print(f"| {name:<58} | {1000 * wall:8.1f} | {1000 * cpu:8.1f} | {target:<10} |")
    print(f"\nbudget: sampling + update {1000 * (sample_s[0] + update_s[0]):.0f} ms of {1000 * TARGET_S:.0f} ms; "
          f"traced sampling is {eager_s[0] / sample_s[0]:.0f}x faster than eager")


if __name__ == "__main__":
    main()
