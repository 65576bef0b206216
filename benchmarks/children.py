"""A search child's costs before and after the speed work, in one run.

Every hour of a search is children training, so this times what a child pays, for the
paper's search child (NASNet-A cells, CIFAR skeleton, N = 2, F = 32, 32x32x3 inputs,
batch 32) and the demo's child (N = 1, F = 8, 28x28x1 Fashion-MNIST-sized inputs, batch
32), each trained the way `tuner.children.train_child` trains it (its `build_child` and
`compile_child`, graph mode: `run_eagerly=False`):

* build: constructing and compiling the Keras model (with its training variables);
* trace + first step: the time `fit` takes to finish its first batch (tracing the train
  function, Grappler, first run) minus one steady step: the one-off overhead of a child;
* eval trace: the same for `evaluate`'s first batch (the reward's inference graph);
* steady step: the median time between later training batches, and images/s.

"before" is the old path: Keras' own layers (`nasnet_keras.kernels.keras_kernels()`),
Grappler on (`ChildConfig(grappler=True)`), and the optimizer and metric variables
created inside the first traced step (`compile_child(..., create_variables=False)`, so
TensorFlow traces it twice); "after" is the shipped code (the faster layers, Grappler off
for children: `tuner.children.child_graph_options`, variables created before the trace:
`tuner.children.create_training_variables`). The sides alternate repeat by repeat, each
child in a fresh process, so that machine noise hits both alike; the table reports
medians with [min-max] over repeats, in wall time and (for trace and step) in process
CPU time, which other processes on the same cores disturb less. Targets: steady step
>= 1.25x faster, trace overhead halved.

    python benchmarks/children.py [--children paper demo] [--repeats 3] [--steps 8] [--same-process]

Each child is measured in a fresh Python process (see `_measure_in_subprocess`).
Measured figures: README, "Accounting and speed".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # run as a script from anywhere: `tuner` lives at the repo root
    sys.path.insert(0, REPO)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from nasnet_keras.kernels import keras_kernels  # noqa: E402
from nasnet_keras.genotype import NASNET_A  # noqa: E402
from tuner.children import ChildConfig, build_child, child_graph_options, compile_child, release_memory  # noqa: E402


@dataclasses.dataclass(frozen=True)
class ChildSpec:
    title: str
    shape: tuple[int, int, int]
    config: ChildConfig


CHILDREN = {
    "paper": ChildSpec("paper's search child (N=2, F=32, 32x32x3)", (32, 32, 3),
                       ChildConfig(num_cells=2, filters=32, batch_size=32, run_eagerly=False)),
    "demo": ChildSpec("demo's child (N=1, F=8, 28x28x1)", (28, 28, 1),
                      ChildConfig(num_cells=1, filters=8, batch_size=32, learning_rate=0.1, bn_momentum=0.5,
                                  run_eagerly=False)),
}
SIDES = ("before", "after")


def _batches(spec: ChildSpec, count: int, seed: int = 0) -> tf.data.Dataset:
    rng = np.random.default_rng(seed)
    batch = spec.config.batch_size
    x = rng.normal(0, 1, (count * batch,) + spec.shape).astype("float32")
    y = rng.integers(0, spec.config.classes, (count * batch,)).astype("int64")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache()


class _BatchClock(keras.callbacks.Callback):
    """Wall-clock time at the end of every training and test batch (synchronised on the loss)."""

    def __init__(self):
        super().__init__()
        self.train, self.test, self.train_cpu = [], [], []

    def on_train_batch_end(self, batch, logs=None):
        float(logs["loss"])
        self.train.append(time.perf_counter())
        self.train_cpu.append(time.process_time())

    def on_test_batch_end(self, batch, logs=None):
        float(logs["loss"])
        self.test.append(time.perf_counter())


def measure(spec: ChildSpec, side: str, steps: int) -> dict[str, float]:
    """One child from scratch: build, one `fit` over steps + 1 batches, one `evaluate`."""
    release_memory()
    keras.utils.set_random_seed(0)
    data = _batches(spec, steps + 1)
    val = _batches(spec, 3, seed=1)
    list(data), list(val)  # fill the caches outside the timings
    config = spec.config.replace(grappler=True) if side == "before" else spec.config
    start = time.perf_counter()
    if side == "before":
        with keras_kernels():
            model = build_child(NASNET_A, spec.shape, config)
    else:
        model = build_child(NASNET_A, spec.shape, config)
    compile_child(model, config, steps_per_epoch=steps + 1, create_variables=side == "after")
    build = time.perf_counter() - start

    clock = _BatchClock()
    start, cpu = time.perf_counter(), time.process_time()
    with child_graph_options(config):
        model.fit(data, epochs=1, verbose=0, callbacks=[clock], shuffle=False)
    step_times = np.diff([start] + clock.train)
    cpu_times = np.diff([cpu] + clock.train_cpu)
    steady = float(np.median(step_times[1:]))
    steady_cpu = float(np.median(cpu_times[1:]))
    start = time.perf_counter()
    with child_graph_options(config):
        model.evaluate(val, verbose=0, callbacks=[clock])
    eval_times = np.diff([start] + clock.test)
    del model
    release_memory()
    return {"build": build, "trace": float(step_times[0]) - steady, "trace_cpu": float(cpu_times[0]) - steady_cpu,
            "eval_trace": float(eval_times[0] - np.median(eval_times[1:])), "step": steady, "step_cpu": steady_cpu,
            "images_per_s": spec.config.batch_size / steady}


def _fmt(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def _load() -> str:
    return "load average %.1f / %.1f / %.1f (1/5/15 min)" % os.getloadavg()


def _measure_in_subprocess(name: str, side: str, steps: int) -> dict[str, float]:
    """`measure` in a fresh Python process: in one long process later children got slower
    on both sides (build 1.1 -> 2.7 s, trace 30 -> 46 s by the third child, at load 1.2),
    which would make the repeat order, not the side, the main effect."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", name, side, "--steps", str(steps)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", nargs="+", default=list(CHILDREN), choices=list(CHILDREN))
    parser.add_argument("--repeats", type=int, default=3, help="fresh children per side (default 3)")
    parser.add_argument("--steps", type=int, default=8, help="steady training steps timed per child (default 8)")
    parser.add_argument("--same-process", action="store_true",
                        help="measure every child in this process (default: one fresh process per child)")
    parser.add_argument("--one", nargs=2, metavar=("CHILD", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(CHILDREN[args.one[0]], args.one[1], args.steps)))
        return {}
    load_before = _load()
    results = {}
    for name in args.children:
        spec = CHILDREN[name]
        runs = {side: [] for side in SIDES}
        for repeat in range(args.repeats):
            for side in SIDES if repeat % 2 == 0 else SIDES[::-1]:
                runs[side].append(measure(spec, side, args.steps) if args.same_process
                                  else _measure_in_subprocess(name, side, args.steps))
                print(f"{name} {side} repeat {repeat + 1}: "
                      + ", ".join(f"{k} {v:.3f}" for k, v in runs[side][-1].items()), flush=True)
        results[name] = runs
    print(f"\n{os.cpu_count()} CPU cores, float32, median [min-max] of {args.repeats} fresh children per side, "
          f"sides alternated; {load_before} before, {_load()} after (TF {tf.__version__}, Keras {keras.__version__})")
    header = ("| child | side | build s | trace + first step s | (CPU s) | build + trace s | eval trace s "
              "| steady step s | (CPU s) | images/s |")
    print(header)
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        for side in SIDES:
            col = {key: [run[key] for run in runs[side]] for key in runs[side][0]}
            col["build_trace"] = [run["build"] + run["trace"] for run in runs[side]]
            print(f"| {name} | {side} | {_fmt(col['build'])} | {_fmt(col['trace'])} | {_fmt(col['trace_cpu'])} "
                  f"| {_fmt(col['build_trace'])} "
                  f"| {_fmt(col['eval_trace'])} | {_fmt(col['step'], 3)} | {_fmt(col['step_cpu'], 3)} "
                  f"| {_fmt(col['images_per_s'], 1)} |")
        before = {key: statistics.median(run[key] for run in runs["before"]) for key in runs["before"][0]}
        after = {key: statistics.median(run[key] for run in runs["after"]) for key in runs["after"][0]}
        for side_values, side in ((before, "before"), (after, "after")):
            side_values["build_trace"] = statistics.median(run["build"] + run["trace"] for run in runs[side])
        print(f"| {name} | before / after | {before['build'] / after['build']:.2f}x "
              f"| {before['trace'] / after['trace']:.2f}x | {before['trace_cpu'] / after['trace_cpu']:.2f}x "
              f"| {before['build_trace'] / after['build_trace']:.2f}x "
              f"| {before['eval_trace'] / after['eval_trace']:.2f}x | {before['step'] / after['step']:.2f}x "
              f"| {before['step_cpu'] / after['step_cpu']:.2f}x | {after['images_per_s'] / before['images_per_s']:.2f}x |")
    return results


if __name__ == "__main__":
    main()
