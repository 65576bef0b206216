"""Training throughput of a recipe's train step with and without XLA and mixed precision, in one run.

The step timed is the one `nasnet train` runs: Keras' compiled `train_function` for a
model built and compiled by the trainer (`models.build_model` + `compile_for_recipe`):
the recipe's optimizer, schedule, losses (aux head), drop path and L2 terms. Four
configurations are built side by side -- float32, float32 + XLA (`jit_compile=True`),
mixed_float16, mixed_float16 + XLA -- warmed up (the "setup" column: tracing, XLA
compilation, first run), then timed in interleaved repeats so machine noise hits all
alike. The table gives median images/s and the ratio to float32 without XLA.

    python benchmarks/training.py [--variant cifar_6@768] [--num-blocks 1] [--filters 8]
                                  [--image-size 32] [--batch 32] [--steps 5] [--repeats 3]

On a CPU, mixed_float16 is emulated (slower); it and XLA are meant for GPUs, where
the same command measures what they buy.
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

from nasnet_keras import variants  # noqa: E402
from nasnet_keras.training.models import build_model, resolve_model  # noqa: E402
from nasnet_keras.training.recipes import default_recipe_name, get_recipe  # noqa: E402
from nasnet_keras.training.trainer import dtype_policy, compile_for_recipe  # noqa: E402

CONFIGS = (("float32", False, False), ("float32 + XLA", False, True),
           ("mixed_float16", True, False), ("mixed_float16 + XLA", True, True))


class Step:
    """One configuration: its model and an iterator feeding the compiled Keras train step."""

    def __init__(self, args, recipe, mixed: bool, xla: bool):
        spec = resolve_model(args.variant, args.variant, num_blocks=args.num_blocks,
                             **({"filters": args.filters} if variants.get(args.variant).skeleton == "cifar" else {}))
        shape = (args.image_size, args.image_size, 3)
        with dtype_policy(mixed):
            model_kwargs = recipe.model_overrides(variants.get(spec.variant).training_kwargs())
            self.model = build_model(spec, shape, 10, model_kwargs)
            compile_for_recipe(self.model, recipe, steps_per_epoch=100, jit_compile=xla)
        rng = np.random.default_rng(0)
        images = rng.normal(size=(args.batch, *shape)).astype("float32")
        labels = np.eye(10, dtype="float32")[rng.integers(0, 10, args.batch)]
        targets = labels if len(self.model.outputs) == 1 else {n: labels for n in self.model.output_names}
        self.iterator = iter(tf.data.Dataset.from_tensors((images, targets)).repeat())
        self.model.make_train_function()
        self.train_function = self.model.train_function

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            logs = self.train_function(self.iterator)
        float(keras.ops.convert_to_numpy(logs["loss"]))  # wait for the last step
        return time.perf_counter() - start


def main(argv=None) -> list[tuple]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="cifar_6@768", help="named variant whose skeleton is timed")
    parser.add_argument("--num-blocks", type=int, default=1)
    parser.add_argument("--filters", type=int, default=8, help="first-stack filters (CIFAR skeleton)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="train steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configs", nargs="+", default=[c[0] for c in CONFIGS], choices=[c[0] for c in CONFIGS])
    args = parser.parse_args(argv)
    variant = variants.get(args.variant)
    recipe = get_recipe(default_recipe_name(variant.name, variant.skeleton), batch_size=args.batch)
    steps = {}
    setup = {}
    for name, mixed, xla in CONFIGS:
        if name not in args.configs:
            continue
        start = time.perf_counter()
        try:
            steps[name] = Step(args, recipe, mixed, xla)
            steps[name].run(2)
        except Exception as error:  # e.g. an op XLA cannot compile on this device
            print(f"{name}: failed ({type(error).__name__}: {str(error).splitlines()[0][:200]})")
            steps.pop(name, None)
            continue
        setup[name] = time.perf_counter() - start
        print(f"{name}: ready after {setup[name]:.1f} s", flush=True)
    times = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            times[name].append(step.run(args.steps))
    gpus = tf.config.list_physical_devices("GPU")
    device = f"{len(gpus)} GPU(s): {', '.join(g.name for g in gpus)}" if gpus else f"CPU, {os.cpu_count()} cores"
    print(f"\n{args.variant} skeleton, N={args.num_blocks}"
          + (f", filters={args.filters}" if variant.skeleton == "cifar" else "")
          + f", {args.image_size}x{args.image_size}x3, batch {args.batch}, recipe {recipe.name!r} "
          f"(aux head {recipe.uses_aux_head}), {device}; median of {args.repeats} x {args.steps} steps "
          f"(TF {tf.__version__}, Keras {keras.__version__})")
    header = f"| {'configuration':20s} | {'setup s':>7s} | {'train img/s':>11s} | {'vs float32':>10s} |"
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
    rows = []
    base = None
    for name in steps:
        rate = args.batch * args.steps / statistics.median(times[name])
        base = base or (rate if name == "float32" else None)
        ratio = f"{rate / base:10.2f}" if base else f"{'-':>10s}"
        print(f"| {name:20s} | {setup[name]:7.1f} | {rate:11.1f} | {ratio} |")
        rows.append((name, setup[name], rate))
    return rows


if __name__ == "__main__":
    main()
