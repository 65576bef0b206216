"""Latency and throughput of the exported SavedModel's signatures vs. the Keras model, one run.

What a deployment pays (or saves) by going through the SavedModel: each signature of a
fresh export is timed beside the Keras model it came from, at batch 1 and 32, in the same
process so that the ratios are meaningful on a noisy machine (reference.md §8).

    python benchmarks/serving.py                  # NASNet-A Mobile, 224x224, random weights
    python benchmarks/serving.py --variant large --repeats 3
    python benchmarks/serving.py --tiny           # a 1 @ 96 model at 64x64: a quick check

Rows: `keras model(x)` (eager call, preprocessing included), `keras predict_on_batch`
(Keras' compiled predict function), then the SavedModel's `serving_default` (float
pixels), `serving_bytes` (JPEG strings: decoding and resizing included), `features` and
the reusable `__call__`. Reported: median latency over `--repeats` timed calls after two
warm-up calls (the paths' calls interleaved), the best call, images per second (from the
median) and speed relative to `keras model(x)`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from timing import time_interleaved  # noqa: E402  (benchmarks/timing.py, beside this script)


def build_model(args):
    import nasnet_keras
    from nasnet_keras import variants

    if args.tiny:
        return nasnet_keras.NASNet(input_shape=(64, 64, 3), penultimate_filters=96, num_blocks=1, weights=None,
                                   classes=10, default_size=64, name="tiny_nasnet"), "tiny (1 @ 96, 64x64)"
    return variants.build(args.variant), args.variant


def photo_jpegs(count, rng):
    """JPEG files as a client would send them: scikit-image's photos if installed, else synthetic."""
    import tensorflow as tf

    encoded = []
    try:
        import skimage.data

        folder = os.path.dirname(skimage.data.__file__)
        encoded = [open(os.path.join(folder, name), "rb").read() for name in ("rocket.jpg", "retina.jpg")]
    except ImportError:
        pass
    if not encoded:
        encoded = [tf.io.encode_jpeg(rng.randint(0, 256, (480, 640, 3)).astype(np.uint8)).numpy()]
    return [encoded[i % len(encoded)] for i in range(count)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="mobile", help="a name of nasnet_keras.variants (random weights)")
    parser.add_argument("--tiny", action="store_true", help="a tiny model instead of --variant (quick check)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import tensorflow as tf

    from nasnet_keras import preprocess_input
    from savedmodels import export

    model, label = build_model(args)
    height, width = model.input_shape[1:3]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = export(model, os.path.join(tmp, "model"), version=1)
        export_s = time.perf_counter() - start
        start = time.perf_counter()
        loaded = tf.saved_model.load(result.path)
        load_s = time.perf_counter() - start

        rng = np.random.RandomState(0)
        rows = []
        for batch in args.batches:
            pixels = rng.uniform(0, 255, (batch, height, width, 3)).astype(np.float32)
            tensor = tf.constant(pixels)
            jpegs = tf.constant(photo_jpegs(batch, rng))
            candidates = [
                ("keras model(x)", lambda: model(preprocess_input(tensor), training=False)),
                ("keras predict_on_batch", lambda: model.predict_on_batch(preprocess_input(pixels))),
                ("SavedModel serving_default", lambda: loaded.signatures["serving_default"](images=tensor)),
                ("SavedModel serving_bytes (JPEG)", lambda: loaded.signatures["serving_bytes"](image_bytes=jpegs)),
                ("SavedModel features", lambda: loaded.signatures["features"](images=tensor)),
                ("SavedModel __call__ (reusable)", lambda: loaded(tensor / 255.0)),
            ]
            times = time_interleaved(candidates, args.repeats)
            baseline = statistics.median(times[candidates[0][0]])
            for name, _ in candidates:
                rows.append((name, batch, statistics.median(times[name]), min(times[name]), baseline))

    print(f"\nServing benchmark: NASNet {label}, {height}x{width}, {result.card['params']:,} params, "
          f"{os.cpu_count()} CPUs, TF {tf.__version__}; export {export_s:.1f} s, load {load_s:.1f} s; "
          f"{args.repeats} interleaved calls per path after 2 warm-ups")
    header = (f"{'path':34s} {'batch':>5s} {'median ms':>10s} {'best ms':>9s} {'images/s':>9s} "
              f"{'vs keras model(x)':>18s}")
    print(header)
    print("-" * len(header))
    for name, batch, median, best, baseline in rows:
        print(f"{name:34s} {batch:5d} {1000 * median:10.1f} {1000 * best:9.1f} {batch / median:9.1f} "
              f"{baseline / median:17.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
