"""The `nasnet export` options for runtime formats and quantization (`--format`, `--quantize`, ...).

Kept apart from `savedmodels.cli` (the SavedModel options) so that the SavedModel
command stays as it was and the deployment formats live with their own code.
"""

from __future__ import annotations

from savedmodels import formats


def add_arguments(parser) -> None:
    parser.add_argument("--format", choices=list(formats.FORMATS), default=formats.DEFAULT_FORMAT,
                        help="saved_model (TF Serving, default), onnx (ONNX Runtime), litert (.tflite) or "
                             "openvino (.xml + .bin); each takes RGB 0..255 pixels and returns probabilities")
    parser.add_argument("--quantize", choices=list(formats.QUANTIZATIONS), default=formats.NO_QUANTIZATION,
                        help="post-training quantization: int8 (onnx, litert, openvino; needs --calibration-data) "
                             "or float16 (litert)")
    parser.add_argument("--calibration-data", nargs="+", default=None, metavar="DATASET_OR_IMAGES",
                        help="representative images for int8: a dataset name (e.g. fashion_mnist; its training "
                             "split) or image files / directories")
    parser.add_argument("--calibration-samples", type=int, default=None,
                        help="how many calibration images (default: 200)")
    parser.add_argument("--data-dir", default=None, help="where the calibration dataset lives")


def export(args, model, directory, *, saved_model_options: dict, **kwargs):
    """Run `savedmodels.deploy.export` with the parsed options; print what a runtime export wrote."""
    from savedmodels import deploy

    if args.format != formats.DEFAULT_FORMAT:
        if saved_model_options.get("kind") == "backbone":
            raise ValueError(f"--backbone applies to --format saved_model only. Received: --format {args.format}")
        if saved_model_options.get("frozen_batchnorm"):
            raise ValueError("--frozen-batchnorm applies to --format saved_model only (a fine-tunable __call__). "
                             f"Received: --format {args.format}")
        saved_model_options = {}
    calibration = args.calibration_data
    try:
        result = deploy.export(
            model, directory, format=args.format, quantize=args.quantize, calibration_data=calibration,
            calibration_samples=args.calibration_samples, data_dir=args.data_dir, **kwargs, **saved_model_options,
        )
    except formats.MissingExtraError as error:
        raise ValueError(str(error)) from None
    if args.format != formats.DEFAULT_FORMAT:
        card = result.card
        sizes = ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in card["files"].items())
        print(f"exported {card['kind']} {card['name']!r} as {card['format']} ({card['quantization']}, "
              f"{card['weights']} weights) to {result.path}: {sizes}")
        print(f"input: float32 RGB 0..255 {card['input']['shape']} NHWC; check with: nasnet predict "
              f"{result.model_file} IMAGE...")
    return result
