"""`nasnet predict MODEL IMAGE...`: run any export on image files and print the top-k classes.

So that a user can check an export -- SavedModel, `.onnx`, `.tflite` or OpenVINO `.xml`,
or the version directory holding one -- without writing code. Images are decoded and
resized to the model's input size as the SavedModel's `serving_bytes` does; class names
come from the model card beside the export (indices without one).
"""

from __future__ import annotations

import json

import numpy as np


def top_k(probabilities: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """[(class index, probability)] best first, for each row."""
    order = np.argsort(-probabilities, axis=-1, kind="stable")[:, :k]
    return [[(int(i), float(row[i])) for i in idx] for row, idx in zip(probabilities, order)]


def predict(model: str, images: list[str], *, k: int = 5, precision: str = "f32", batch_size: int = 32) -> list[dict]:
    """[{"image": path, "top": [{"class": index, "name": name, "probability": p}, ...]}] for each image."""
    from nasnet_keras.checks import check_int
    from savedmodels import calibration, runtimes

    check_int("top_k", k, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    runner = runtimes.load(model, precision=precision)
    if not runner.has_classes:
        raise ValueError(f"{model!r} is a feature extractor (no classifier head); it has no classes to predict")
    files = calibration.image_files(images)
    names = runner.class_names
    results = []
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        probabilities = runner(calibration.read_images(chunk, runner.input_size))
        for path, best in zip(chunk, top_k(probabilities, k)):
            results.append({
                "image": path,
                "top": [{"class": i, "name": names[i] if names else str(i), "probability": p} for i, p in best],
            })
    return results


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="run an exported model (SavedModel, .onnx, .tflite, OpenVINO .xml) on image files",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
    )
    parser.add_argument("model", help="a SavedModel or version directory, or a .onnx / .tflite / .xml file")
    parser.add_argument("images", nargs="+", help="image files (JPEG/PNG/GIF/BMP/WebP) or directories of them")
    parser.add_argument("--top-k", type=int, default=5, help="classes to print per image (default: 5)")
    parser.add_argument("--openvino-precision", choices=("f32", "default"), default="f32",
                        help="OpenVINO inference precision (default f32; 'default' keeps the CPU plugin's, "
                             "often bf16)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.set_defaults(func=run)


def run(args) -> int:
    from savedmodels.formats import MissingExtraError

    try:
        results = predict(args.model, args.images, k=args.top_k, precision=args.openvino_precision)
    except MissingExtraError as error:
        raise ValueError(str(error)) from None
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for result in results:
        best = ", ".join(f"{t['name']} ({t['class']}) {t['probability']:.4f}" for t in result["top"])
        print(f"{result['image']}: {best}")
    return 0
