"""Throughput of our NASNetMobile / NASNetLarge against keras.applications, in one run.

For each model: inference (images/s, `model(x, training=False)` in a tf.function) and a
training step (forward + backward + SGD update) at batch 32, float32. Measurements of
ours and Keras' are interleaved repeat by repeat so that machine noise hits both alike;
the table reports medians and the ratio ours / Keras (target >= 1.0). `--xla` adds rows
for our model compiled with XLA (`jit_compile=True`) to show what it buys.

    python benchmarks/models.py [--models mobile large] [--batch 32] [--repeats 3] [--xla]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import nasnet_keras  # noqa: E402

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


def _time(fn, *args) -> float:
    start = time.perf_counter()
    out = fn(*args)
    np.asarray(out)  # wait for the result
    return time.perf_counter() - start


def benchmark(name: str, batch: int, repeats: int, xla: bool) -> list[tuple]:
    ours_fn, keras_fn, size = MODELS[name]
    runners = {"keras.applications": Runner(keras_fn(weights=None)), "nasnet_keras": Runner(ours_fn(weights=None))}
    if xla:
        runners["nasnet_keras + XLA"] = Runner(ours_fn(weights=None), jit_compile=True)
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
            times[key]["train"].append(_time(runner.train_step, x, y))
    rows = []
    base = times["keras.applications"]
    for key in runners:
        infer = batch / statistics.median(times[key]["infer"])
        train = batch / statistics.median(times[key]["train"])
        ref_infer = batch / statistics.median(base["infer"])
        ref_train = batch / statistics.median(base["train"])
        rows.append((name, key, infer, infer / ref_infer, train, train / ref_train))
    return rows


def main(argv=None) -> list[tuple]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mobile", "large"], choices=sorted(MODELS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--xla", action="store_true", help="also time our model with jit_compile=True")
    args = parser.parse_args(argv)
    rows = []
    for name in args.models:
        rows += benchmark(name, args.batch, args.repeats, args.xla)
        keras.backend.clear_session()
    print(f"\nbatch {args.batch}, float32, {os.cpu_count()} CPU cores, median of {args.repeats} "
          f"(TF {tf.__version__}, Keras {keras.__version__})")
    header = f"| {'model':7s} | {'implementation':20s} | {'infer img/s':>11s} | {'ratio':>5s} | {'train img/s':>11s} | {'ratio':>5s} |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for name, key, infer, r_infer, train, r_train in rows:
        print(f"| {name:7s} | {key:20s} | {infer:11.2f} | {r_infer:5.2f} | {train:11.2f} | {r_train:5.2f} |")
    return rows


if __name__ == "__main__":
    main()
