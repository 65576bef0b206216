"""Do quantized exports keep the trained model's answers? Top-1 agreement on real test images.

    python benchmarks/deploy_agreement.py                          # train, export, measure
    python benchmarks/deploy_agreement.py --model runs/fmnist.keras  # reuse a trained model

A small NASNet-A (CIFAR skeleton, N = 1, F = 8, 28x28x3: small enough to train on a
shared 2-core CPU in minutes) is trained for `--epochs` on the first `--train-images` of
Fashion-MNIST's training split (read offline through `nasnet_keras.data`; gray repeated to
RGB), then exported to every format, fp32 and quantized; int8 is calibrated on
`--calibration` images of the *training* split. Every export then classifies the whole
Fashion-MNIST test split (10,000 images it never saw), and the table gives, per export:
accuracy, top-1 agreement with the Keras model, the largest probability difference and
the file size. The issue's bar: fp32 exports equal Keras to 1e-4, int8 agrees on >= 98%.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

EXPORTS = (
    ("saved_model", "none"),
    ("onnx", "none"),
    ("onnx", "int8"),
    ("litert", "none"),
    ("litert", "float16"),
    ("litert", "int8"),
    ("openvino", "none"),
    ("openvino", "int8"),
)
SIZE = (28, 28)


def train(train_images: int, epochs: int, batch_size: int, seed: int = 0):
    import keras

    import nasnet_keras
    from savedmodels import calibration

    keras.utils.set_random_seed(seed)
    images, labels = calibration.dataset_images("fashion_mnist", SIZE, train_images, split="train")
    model = nasnet_keras.NASNetCIFAR(input_shape=SIZE + (3,), filters=8, num_blocks=1, classes=10,
                                     name="fmnist_nasnet")
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(nasnet_keras.preprocess_input(images), labels, batch_size=batch_size, epochs=epochs, verbose=2)
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a trained .keras file (skips training)")
    parser.add_argument("--save-model", default=None, help="save the trained model here (.keras)")
    parser.add_argument("--train-images", type=int, default=12_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--test-images", type=int, default=10_000)
    parser.add_argument("--calibration", type=int, default=200)
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)

    import keras

    import nasnet_keras
    from savedmodels import calibration, deploy, runtimes

    start = time.perf_counter()
    if args.model:
        model = keras.saving.load_model(args.model)
        trained = f"loaded {args.model}"
    else:
        model = train(args.train_images, args.epochs, args.batch_size)
        trained = f"trained {args.epochs} epochs on {args.train_images} images in {time.perf_counter() - start:.0f} s"
        if args.save_model:
            from nasnet_keras.fileio import atomic_path

            with atomic_path(args.save_model) as partial:
                model.save(partial)
    test, labels = calibration.dataset_images("fashion_mnist", SIZE, args.test_images, split="test")
    # preprocess_input scales a float array in place (keras.applications' behaviour): give it a copy
    expected = model.predict(nasnet_keras.preprocess_input(test.copy()), batch_size=256, verbose=0)

    rows = [{"export": "keras (fp32)", "accuracy": float(np.mean(expected.argmax(-1) == labels)),
             "agreement": 1.0, "max_abs_diff": 0.0, "size_mb": None}]
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, quantize in EXPORTS:
            result = deploy.export(model, os.path.join(tmp, f"{fmt}_{quantize}"), 1, format=fmt, quantize=quantize,
                                   calibration_data="fashion_mnist" if quantize == "int8" else None,
                                   calibration_samples=args.calibration if quantize == "int8" else None)
            runner = runtimes.load(result.model_file)
            got = np.concatenate([runner(test[i:i + 250]) for i in range(0, len(test), 250)])
            size = sum(result.card["files"].values()) / 1e6 if result.card.get("files") else None
            rows.append({"export": f"{fmt} {quantize if quantize != 'none' else 'fp32'}",
                         "accuracy": float(np.mean(got.argmax(-1) == labels)),
                         "agreement": float(np.mean(got.argmax(-1) == expected.argmax(-1))),
                         "max_abs_diff": float(np.abs(got - expected).max()), "size_mb": size})
            print(rows[-1], flush=True)

    print(f"\nInt8/fp16 agreement: {model.name} ({model.count_params():,} params), {trained}; "
          f"Fashion-MNIST test split, {len(test)} images; int8 calibrated on {args.calibration} training images")
    header = f"{'export':22s} {'accuracy':>8s} {'top-1 agreement':>15s} {'max |diff|':>10s} {'size MB':>8s}"
    print(header)
    print("-" * len(header))
    for r in rows:
        size = f"{r['size_mb']:8.2f}" if r["size_mb"] else "       -"
        print(f"{r['export']:22s} {r['accuracy']:8.4f} {r['agreement']:15.4f} {r['max_abs_diff']:10.1e} {size}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"trained": trained, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
