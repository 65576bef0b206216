"""Inference speed of every export format vs keras.applications NASNetMobile, same weights, one run.

    python benchmarks/deploy.py                      # NASNet-A Mobile, 224x224
    python benchmarks/deploy.py --repeats 100 --batch-repeats 8
    python benchmarks/deploy.py --tiny               # a 1 @ 96 model at 64x64: a quick check

keras.applications' NASNetMobile gets random weights (BatchNorm statistics randomised so
every weight matters); they are written to a Keras-2-layout h5 file with Keras' own writer
and loaded into ours, so every row runs the same network. Rows:

* `keras.applications (tf.function)`: the reference, `tf.function(model)(x / 127.5 - 1)`;
* `our SavedModel serving_default`: `nasnet export`'s default output, loaded with TF;
* `onnx`, `litert`, `openvino` exports, fp32 and quantized (int8 calibrated on
  `--calibration` images of Fashion-MNIST's training split, resized to 224), each run by its
  own runtime (`savedmodels.runtimes`, all cores); OpenVINO at f32 and at its CPU default
  (OpenVINO int8 is ONNX Runtime's QDQ int8 model, the preprocessing's Sub quantized too,
  converted by OpenVINO's `convert_model`).

Batch 1: median and p90 latency over `--repeats` calls; batch 32: images/s from the median
of `--batch-repeats` calls. All paths' calls are interleaved round-robin after warm-up, so
load from other processes on a shared machine falls on every path alike; the spread
(p90 / median) says how noisy the run was. `max |diff|` is against the reference's
probabilities on the batch-32 images (random pixels); `top-1 agree` likewise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from timing import time_interleaved  # noqa: E402  (benchmarks/timing.py, beside this script)

EXPORTS = (  # (format, quantize, label)
    ("onnx", "none", "onnx fp32 (ONNX Runtime)"),
    ("onnx", "int8", "onnx int8 (ONNX Runtime)"),
    ("litert", "none", "litert fp32 (LiteRT)"),
    ("litert", "float16", "litert float16 (LiteRT)"),
    ("litert", "int8", "litert int8 (LiteRT)"),
    ("openvino", "none", "openvino fp32 (OpenVINO f32)"),
    ("openvino", "int8", "openvino int8 (OpenVINO f32)"),  # ONNX Runtime's QDQ model (+ Sub), converted by OpenVINO
)


def reference_and_ours(tiny: bool, tmp: str):
    """(keras.applications-style reference, our model with the same weights, label)."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format  # Keras' own writer of its published files' layout

    import nasnet_keras

    if tiny:
        keras.utils.set_random_seed(0)
        ours = nasnet_keras.NASNet(input_shape=(64, 64, 3), penultimate_filters=96, num_blocks=1, weights=None,
                                   classes=10, default_size=64, name="tiny_nasnet")
        return ours, ours, "tiny NASNet-A 1 @ 96, 64x64 (reference = our model in TF)"
    reference = keras.applications.NASNetMobile(weights=None)
    rng = np.random.default_rng(0)
    for layer in reference.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                               rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
    path = os.path.join(tmp, "nasnet_mobile.h5")
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, reference)
    ours = nasnet_keras.NASNetMobile(weights=path)
    return reference, ours, "NASNet-A Mobile 224x224 (keras.applications weights layout, random values)"


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny model instead of Mobile (quick check)")
    parser.add_argument("--repeats", type=int, default=60, help="timed batch-1 calls per path")
    parser.add_argument("--batch-repeats", type=int, default=6, help="timed batch-32 calls per path")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--calibration", type=int, default=100, help="Fashion-MNIST calibration images for int8")
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from savedmodels import deploy, runtimes
    from savedmodels.signatures import scale_pixels

    with tempfile.TemporaryDirectory() as tmp:
        reference, ours, label = reference_and_ours(args.tiny, tmp)
        height, width = ours.input_shape[1:3]
        reference_fn = tf.function(lambda x: reference(scale_pixels(x), training=False))

        runners, export_seconds, sizes = {}, {}, {}
        start = time.perf_counter()
        result = deploy.export(ours, os.path.join(tmp, "saved_model"), 1)
        export_seconds["our SavedModel serving_default"] = time.perf_counter() - start
        runners["our SavedModel serving_default"] = runtimes.load(result.model_file)
        for fmt, quantize, name in EXPORTS:
            start = time.perf_counter()
            result = deploy.export(
                ours, os.path.join(tmp, f"{fmt}_{quantize}"), 1, format=fmt, quantize=quantize,
                calibration_data="fashion_mnist" if quantize == "int8" else None,
                calibration_samples=args.calibration if quantize == "int8" else None,
            )
            export_seconds[name] = time.perf_counter() - start
            sizes[name] = sum(result.card["files"].values())
            runners[name] = runtimes.load(result.model_file)
            print(f"exported {name} in {export_seconds[name]:.0f} s ({sizes[name] / 1e6:.1f} MB)", flush=True)
            if fmt == "openvino":  # the same file at the CPU plugin's own precision (bf16 on AVX512-BF16)
                default = runtimes.load(result.model_file, precision="default")
                default_name = name.replace("OpenVINO f32", f"OpenVINO default {default.precision}")
                runners[default_name] = default
                sizes[default_name] = sizes[name]

        rng = np.random.RandomState(0)
        one = rng.uniform(0, 255, (1, height, width, 3)).astype(np.float32)
        many = rng.uniform(0, 255, (args.batch, height, width, 3)).astype(np.float32)
        reference_name = "keras.applications (tf.function)"
        paths = {reference_name: lambda x: reference_fn(tf.constant(x)).numpy(), **runners}

        expected = paths[reference_name](many)
        parity = {}
        for name, fn in paths.items():
            got = fn(many)
            parity[name] = (float(np.abs(got - expected).max()),
                            float(np.mean(got.argmax(-1) == expected.argmax(-1))))

        single = time_interleaved([(n, lambda fn=fn: fn(one)) for n, fn in paths.items()], args.repeats,
                                  warmup=3)
        batched = time_interleaved([(n, lambda fn=fn: fn(many)) for n, fn in paths.items()], args.batch_repeats,
                                   warmup=1)

    base_1 = statistics.median(single[reference_name])
    base_32 = args.batch / statistics.median(batched[reference_name])
    rows = []
    for name in paths:
        median = statistics.median(single[name])
        throughput = args.batch / statistics.median(batched[name])
        rows.append({
            "path": name, "b1_median_ms": 1000 * median, "b1_p90_ms": 1000 * percentile(single[name], 90),
            "b1_speedup": base_1 / median, f"b{args.batch}_images_per_s": throughput,
            f"b{args.batch}_speedup": throughput / base_32, "max_abs_diff": parity[name][0],
            "top1_agree": parity[name][1], "size_mb": sizes.get(name, 0) / 1e6 or None,
        })

    load = os.getloadavg()
    print(f"\nDeploy benchmark: {label}; {len(os.sched_getaffinity(0))} CPUs usable, load average "
          f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at the end; TF {tf.__version__}; batch 1: {args.repeats} "
          f"interleaved calls per path, batch {args.batch}: {args.batch_repeats}; ratios vs keras.applications")
    header = (f"{'path':44s} {'b1 median ms':>12s} {'b1 p90 ms':>9s} {'b1 x':>6s} "
              f"{f'b{args.batch} img/s':>10s} {f'b{args.batch} x':>6s} {'max|diff|':>9s} {'top1':>5s} {'MB':>5s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        size = f"{r['size_mb']:5.1f}" if r["size_mb"] else "    -"
        print(f"{r['path']:44s} {r['b1_median_ms']:12.1f} {r['b1_p90_ms']:9.1f} {r['b1_speedup']:5.2f}x "
              f"{r[f'b{args.batch}_images_per_s']:10.1f} {r[f'b{args.batch}_speedup']:5.2f}x "
              f"{r['max_abs_diff']:9.1e} {r['top1_agree']:5.2f} {size}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"label": label, "load_average": load, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
