"""Throughput of our NASNetMobile / NASNetLarge against keras.applications, in one run.

For each model: inference (images/s, `model(x, training=False)` in a tf.function) and a
training step (forward + backward + SGD update), float32, same weights on every side.
Sides: keras.applications, nasnet_keras as shipped (its faster layers,
`nasnet_keras.kernels`) and nasnet_keras built on Keras' own layers (inside
`keras_kernels()`: the path before issue 12). Measurements are interleaved repeat by
repeat so that machine noise hits every side alike; the table reports the median, the
spread (min-max over repeats, images/s) and the ratio of medians to Keras (targets:
>= 1.15 inference, >= 1.25 training), in wall time and in process CPU time (the second is
less disturbed when other processes share the cores). `--xla` adds our model compiled with XLA.

    python benchmarks/models.py [--models mobile large] [--batch 32] [--large-batch 8]
                                [--repeats 5] [--xla]

NASNetLarge defaults to batch 8: at 32 the training steps of the sides do not fit in
this machine's 24 GiB together. Measured figures: README, "Accounting and speed".
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras.src.legacy.saving import legacy_h5_format  # noqa: E402

import nasnet_keras  # noqa: E402
from nasnet_keras.kernels import keras_kernels  # noqa: E402
from nasnet_keras.keras_weights import load_keras_nasnet_weights  # noqa: E402

MODELS = {
    "mobile": (nasnet_keras.NASNetMobile, keras.applications.NASNetMobile, 224),
    "large": (nasnet_keras.NASNetLarge, keras.applications.NASNetLarge, 331),
}


class Runner:
    """A model with its compiled inference and training-step functions."""

    def __init__(self, model, jit_compile: bool = False):
        self.model = model
        self.optimizer = keras.optimizers.SGD(0.01)
        self.optimizer.build(model.trainable_variables)
        loss_fn = keras.losses.SparseCategoricalCrossentropy()

        @tf.function(jit_compile=jit_compile)
        def infer(x):
            return model(x, training=False)

        @tf.function(jit_compile=jit_compile)
        def train_step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            self.optimizer.apply(grads, model.trainable_variables)
            return loss

        self.infer, self.train_step = infer, train_step


def _time(fn, *args) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call; CPU time is less hit by other processes."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    np.asarray(out)  # wait for the result
    return time.perf_counter() - start, time.process_time() - cpu


def _median_spread(batch: int, seconds: list[float]) -> tuple[float, float, float]:
    rates = [batch / t for t in seconds]
    return statistics.median(rates), min(rates), max(rates)


def build_sides(name: str, xla: bool) -> dict:
    """Keras' model and ours (fast and on Keras' layers), all holding the same weights."""
    ours_fn, keras_fn, _ = MODELS[name]
    reference = keras_fn(weights=None)
    sides = {"keras.applications": reference, "nasnet_keras": ours_fn(weights=None)}
    with keras_kernels():
        sides["nasnet_keras, Keras layers"] = ours_fn(weights=None)
    if xla:
        sides["nasnet_keras + XLA"] = ours_fn(weights=None)
    with tempfile.TemporaryDirectory() as tmp:  # Keras' weights into ours, by layer name
        path = os.path.join(tmp, f"{name}.h5")
        with h5py.File(path, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, reference)
        for key, model in sides.items():
            if key != "keras.applications":
                load_keras_nasnet_weights(model, path)
    return sides


def benchmark(name: str, batch: int, repeats: int, xla: bool) -> list[tuple]:
    _, _, size = MODELS[name]
    runners = {key: Runner(model, jit_compile=key.endswith("XLA")) for key, model in build_sides(name, xla).items()}
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32"))
    y = tf.constant(rng.integers(0, 1000, (batch,)))
    for runner in runners.values():  # warm-up: tracing and first-run allocation
        _time(runner.infer, x)
        _time(runner.train_step, x, y)
    times = {key: {"infer": [], "train": []} for key in runners}
    for _ in range(repeats):
        for key, runner in runners.items():
            times[key]["infer"].append(_time(runner.infer, x))
        for key, runner in runners.items():
            times[key]["train"].append(_time(runner.train_step, x, y))
    rows = []
    ref = {kind: statistics.median(t[0] for t in times["keras.applications"][kind]) for kind in ("infer", "train")}
    ref_cpu = {kind: statistics.median(t[1] for t in times["keras.applications"][kind]) for kind in ("infer", "train")}
    for key in runners:
        row = [name, key, batch]
        for kind in ("infer", "train"):
            wall = [t[0] for t in times[key][kind]]
            cpu = statistics.median(t[1] for t in times[key][kind])
            row += [_median_spread(batch, wall), ref[kind] / statistics.median(wall), ref_cpu[kind] / cpu]
        rows.append(tuple(row))
    return rows


def _load() -> str:
    try:
        return "load average %.1f / %.1f / %.1f (1/5/15 min)" % os.getloadavg()
    except OSError:
        return "load average unknown"


def print_table(rows, repeats: int, load_before: str) -> None:
    print(f"\nfloat32, {os.cpu_count()} CPU cores, median [min-max] of {repeats} interleaved repeats "
          f"(TF {tf.__version__}, Keras {keras.__version__}); {load_before} before, {_load()} after")
    header = (f"| {'model':6s} | {'implementation':26s} | batch | {'infer img/s':>22s} | ratio | CPU ratio "
              f"| {'train img/s':>22s} | ratio | CPU ratio |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for name, key, batch, infer, r_infer, c_infer, train, r_train, c_train in rows:
        cell = lambda m: f"{m[0]:7.2f} [{m[1]:6.2f}-{m[2]:6.2f}]"  # noqa: E731
        print(f"| {name:6s} | {key:26s} | {batch:5d} | {cell(infer):>22s} | {r_infer:5.2f} | {c_infer:9.2f} "
              f"| {cell(train):>22s} | {r_train:5.2f} | {c_train:9.2f} |")
    print("ratio: Keras' median wall time / this side's; CPU ratio: the same with process CPU time", flush=True)


def main(argv=None) -> list[tuple]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mobile", "large"], choices=sorted(MODELS))
    parser.add_argument("--batch", type=int, default=32, help="batch of NASNetMobile (default 32)")
    parser.add_argument("--large-batch", type=int, default=8, help="batch of NASNetLarge (default 8: memory)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--xla", action="store_true", help="also time our model with jit_compile=True")
    args = parser.parse_args(argv)
    load_before = _load()
    rows = []
    for name in args.models:
        rows += benchmark(name, args.large_batch if name == "large" else args.batch, args.repeats, args.xla)
        keras.backend.clear_session()
        print_table(rows, args.repeats, load_before)  # after each model: a later one may run out of memory
    return rows


if __name__ == "__main__":
    main()
