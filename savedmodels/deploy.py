"""`export(model, directory, format=...)`: one NASNet model as a SavedModel, ONNX, LiteRT or OpenVINO file.

Every format takes what `serving_default` takes -- float32 RGB pixels 0..255, NHWC,
[batch, H, W, 3] -- and returns class probabilities [batch, classes] (the pooled
features for a model without a head): the scaling to [-1, 1] and, for a logits head,
the softmax are part of the exported graph, so a client of any runtime feeds pixels and
reads probabilities. The conversion is done by the converters Keras and the runtimes
maintain (`keras.Model.export(format="onnx" | "litert" | "openvino")`, which drive
tf2onnx, the TFLite converter and OpenVINO's `convert_model`), never by hand.

The layout is the versioned one that TF Serving, OpenVINO Model Server and Triton all
read: `DIRECTORY/<version>/{model.onnx | model.tflite | model.xml + model.bin,
model_card.json}`. A version directory appears complete or not at all (written beside
it under a hidden name and renamed, `nasnet_keras.fileio.atomic_directory`), an existing
version is replaced only with `overwrite=True`, and a failed export leaves nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform

from savedmodels import formats

CARD_FILENAME = "model_card.json"  # the SavedModel's card file name, for every format
CARD_FORMAT_VERSION = 1
INPUT_NAME = "images"
PREPROCESSING_TEXT = {
    "scale": "float32 pixels 0..255, layout NHWC [batch, H, W, C]; scaled inside the model to x / 127.5 - 1 "
             "(as the SavedModel's serving_default)",
    "standardize": "float32 pixels 0..255, layout NHWC [batch, H, W, C]; standardized per image inside the model "
                   "((x - mean) / std, as the SavedModel's serving_default)",
}


# How each quantized file was made, for the model card (savedmodels.quantize has the reasons).
_ORT_INT8 = ("onnxruntime.quantization.quantize_static: QDQ, per-channel int8 weights, uint8 activations, "
             "MinMax calibration")
QUANTIZERS = {
    ("onnx", "int8"): _ORT_INT8,
    ("openvino", "int8"): _ORT_INT8 + ", QDQ pairs on its default operator types plus Sub (the preprocessing's "
                          "x / 127.5 - 1 quantized too); then openvino.convert_model (QDQ pairs -> FakeQuantize, "
                          "run as int8)",
    ("litert", "int8"): "TFLite converter, Optimize.DEFAULT with a representative dataset: int8 weights "
                        "(per-channel) and activations, float32 input and output; the classifier head "
                        "(FULLY_CONNECTED, SOFTMAX) kept float (QuantizationDebugger denylisted_ops)",
    ("litert", "float16"): "TFLite converter, Optimize.DEFAULT, supported_types=[float16]: float16 weights",
}


@dataclasses.dataclass(frozen=True)
class DeployResult:
    path: str  # the version directory
    version: int
    model_file: str  # the file a runtime opens (the version directory for a SavedModel)
    card: dict


def export(
    model,
    directory,
    version: int | None = None,
    *,
    format: str = formats.DEFAULT_FORMAT,
    quantize: str | None = None,
    calibration_data=None,
    calibration_samples: int | None = None,
    data_dir: str | None = None,
    overwrite: bool = False,
    class_names: list[str] | None = None,
    ema="auto",
    variant: str | None = None,
    source: str | None = None,
    preprocessing: str = "scale",
    **saved_model_options,
) -> DeployResult:
    """Export `model` to `directory/<version>/` in `format`.

    Args:
        model: a built functional nasnet_keras model with a static (H, W, 3) input.
        directory: the model's base directory (a model server's model base path).
        version: positive integer; default one more than the highest existing version.
        format: "saved_model" (TF Serving; `savedmodels.export`), "onnx", "litert" or "openvino".
        quantize: "none" (default), "int8" (onnx, litert, openvino: post-training static quantization
            calibrated on `calibration_data`; openvino's is ONNX Runtime's QDQ model converted by
            OpenVINO, so it needs the onnx extra too) or "float16" (litert: float16 weights).
        calibration_data: a dataset name of `nasnet_keras.data` (e.g. "fashion_mnist"; its
            training split is used) or image files / directories; required for int8.
        calibration_samples: how many calibration images (default 200).
        data_dir: where the calibration dataset lives (default: `nasnet_keras.data`'s routes).
        overwrite: replace an existing version directory.
        class_names, ema, variant, source, preprocessing: as for `savedmodels.export` (what the
            network was trained on: "scale" or "standardize"; applied inside every format).
        **saved_model_options: `kind`, `top_k`: SavedModel-only options of `savedmodels.export`.
    """
    from nasnet_keras.checks import check_int
    from savedmodels import calibration

    fmt = formats.get(format)
    quantize = formats.check_quantization(fmt, quantize)
    if calibration_samples is None:
        calibration_samples = calibration.DEFAULT_SAMPLES
    check_int("calibration_samples", calibration_samples, minimum=1)
    if quantize == "int8" and calibration_data is None:
        raise ValueError(
            "quantize='int8' needs representative images to fix the activation ranges: pass calibration_data "
            "(CLI: --calibration-data) with a dataset name (e.g. fashion_mnist) or image files/directories"
        )
    if quantize != "int8" and calibration_data is not None:
        raise ValueError(f"calibration_data is used only with quantize='int8'. Received: quantize={quantize!r}")
    if fmt.name == "saved_model":
        from savedmodels.exporter import export as export_saved_model

        result = export_saved_model(model, directory, version, overwrite=overwrite, class_names=class_names,
                                    ema=ema, variant=variant, source=source, preprocessing=preprocessing,
                                    **saved_model_options)
        return DeployResult(result.path, result.version, result.path, result.card)
    if saved_model_options:
        raise ValueError(f"Options {sorted(saved_model_options)} apply to format 'saved_model' only. "
                         f"Received: format={fmt.name!r}")
    formats.require_export(fmt, quantize)  # before any work: a missing runtime is reported first

    from nasnet_keras.fileio import atomic_directory, remove_stale_partials
    from nasnet_keras.kernel_copy import keras_kernels_copy
    from savedmodels import ema_export as ema_lib
    from savedmodels import introspect
    from savedmodels.exporter import version_directory

    from nasnet_keras.checks import check_choice
    from savedmodels.signatures import PREPROCESSING

    facts = dataclasses.replace(introspect.describe(model),
                                preprocessing=check_choice("preprocessing", preprocessing, PREPROCESSING))
    class_names = _check_class_names(class_names, facts, model)
    averages = ema_lib.resolve(model, ema)
    directory, version, final = version_directory(directory, version, overwrite)
    remove_stale_partials(directory)  # what an export killed earlier left behind (never a live writer's)
    described_calibration = None
    images = None
    if quantize == "int8":
        images, described_calibration = calibration.load(calibration_data, facts.input_size, calibration_samples,
                                                         data_dir=data_dir)

    created_base = not os.path.exists(directory)
    try:
        with atomic_directory(final, overwrite=overwrite) as partial:
            with ema_lib.swapped_in(averages):
                # The converters get the model on Keras' own layers (see keras_kernels_copy).
                portable = keras_kernels_copy(model)
                portable_facts = facts if portable is model else dataclasses.replace(
                    introspect.describe(portable), preprocessing=facts.preprocessing)
                network = inference_model(portable_facts)
                _convert(network, fmt, quantize, images, partial)
            card = _card(facts, fmt, quantize, partial, class_names=class_names, calibration=described_calibration,
                         weights="raw" if averages is None else "ema", variant=variant, source=source)
            from nasnet_keras.fileio import write_json

            write_json(os.path.join(partial, CARD_FILENAME), card)
    except BaseException:
        if created_base and os.path.isdir(directory) and not os.listdir(directory):
            os.rmdir(directory)
        raise
    return DeployResult(final, version, os.path.join(final, fmt.filename), card)


def _check_class_names(class_names, facts, model):
    if class_names is None:
        return None
    class_names = [str(name) for name in class_names]
    if facts.num_classes is None:
        raise ValueError(f"`class_names` name a classifier's outputs, but model {model.name!r} has no head")
    if len(class_names) != facts.num_classes:
        raise ValueError(f"`class_names` must name each of the model's {facts.num_classes} outputs. "
                         f"Received {len(class_names)} names")
    return class_names


def inference_model(facts):
    """pixels 0..255 -> probabilities (or pooled features): the graph every runtime format holds."""
    import keras

    from savedmodels.signatures import preprocess

    height, width = facts.input_size
    inputs = keras.Input((height, width, facts.channels), name=INPUT_NAME, dtype="float32")
    scaled = keras.layers.Lambda(functools.partial(preprocess, preprocessing=facts.preprocessing),
                                 name=f"{facts.preprocessing}_pixels")(inputs)
    if facts.classifier is None:
        outputs = facts.pooled(scaled)
    else:
        outputs = facts.classifier(scaled)
        if facts.classifier_activation in ("linear", None):  # a logits head: export probabilities all the same
            outputs = keras.layers.Softmax(name="probabilities")(outputs)
    outputs = keras.layers.Activation("linear", dtype="float32", name="output")(outputs)
    return keras.Model(inputs, outputs, name=f"{facts.model.name}_inference")


def input_signature(facts):
    import tensorflow as tf

    height, width = facts.input_size
    return [tf.TensorSpec((None, height, width, facts.channels), tf.float32, name=INPUT_NAME)]


def _from_fp32_onnx(network, signature, directory, convert) -> None:
    """Export `network` as a temporary fp32 ONNX file in `directory` and pass its path to `convert`.

    Both int8 paths quantize tf2onnx's fp32 graph (ONNX Runtime's QDQ tools; OpenVINO then
    converts that QDQ file). The temporary file lives in the export's partial directory and
    is removed once `convert` has written the real file (or failed).
    """
    fp32 = os.path.join(directory, ".fp32.onnx")
    network.export(fp32, format="onnx", input_signature=signature, verbose=False)
    try:
        convert(fp32)
    finally:
        if os.path.exists(fp32):
            os.remove(fp32)


def _convert(network, fmt, quantize, images, directory) -> None:
    """Write `network` in `fmt` into `directory` with the runtimes' converters."""
    from savedmodels import quantize as quantize_lib

    path = os.path.join(directory, fmt.filename)
    signature = [_spec(network)]
    if fmt.name == "onnx":
        if quantize == "int8":
            _from_fp32_onnx(network, signature, directory,
                            lambda fp32: quantize_lib.onnx_int8(fp32, path, images, INPUT_NAME))
        else:
            network.export(path, format="onnx", input_signature=signature, verbose=False)
    elif fmt.name == "litert":
        if quantize == "int8":
            quantize_lib.litert_int8(network, signature[0], images, path)
        else:
            options = quantize_lib.litert_options(quantize)
            network.export(path, format="litert", input_signature=signature, verbose=False, **options)
    elif fmt.name == "openvino":
        if quantize == "int8":
            _from_fp32_onnx(network, signature, directory,
                            lambda fp32: quantize_lib.openvino_int8(fp32, path, images, INPUT_NAME))
        else:
            network.export(path, format="openvino", input_signature=signature, verbose=False)
    else:  # pragma: no cover - formats.FORMATS and this function list the same formats
        raise ValueError(f"No converter for format {fmt.name!r}")


def _spec(network):
    import tensorflow as tf

    return tf.TensorSpec((None,) + tuple(network.inputs[0].shape[1:]), tf.float32, name=INPUT_NAME)


def _card(facts, fmt, quantize, directory, *, class_names, calibration, weights, variant, source) -> dict:
    """What a user of the file needs: format, input layout, preprocessing, output, class names, provenance."""
    import keras
    import tensorflow as tf

    from nasnet_keras import __version__
    from nasnet_keras.profiling import profile

    height, width = facts.input_size
    cost = profile(facts.model)
    genotype = facts.genotype
    classifier = facts.classifier is not None
    card = {
        "format_version": CARD_FORMAT_VERSION,
        "format": fmt.name,
        "file": fmt.filename,
        "files": {name: os.path.getsize(os.path.join(directory, name)) for name in sorted(os.listdir(directory))},
        "runtime": fmt.runtime,
        "install": formats.install_hint(fmt, quantize),
        "quantization": quantize,
        "quantizer": QUANTIZERS.get((fmt.name, quantize)),
        "calibration": calibration,
        "name": facts.model.name,
        "kind": "classifier" if classifier else "features",
        "variant": variant,
        "source": source,
        "genotype": None if genotype is None else {**genotype.to_dict(), "id": genotype.id},
        "input_size": [height, width, facts.channels],
        "input": {"name": INPUT_NAME, "dtype": "float32", "layout": "NHWC",
                  "shape": [None, height, width, facts.channels], "range": [0, 255],
                  "channels": "RGB" if facts.channels == 3 else "grayscale"},
        "preprocessing": PREPROCESSING_TEXT[facts.preprocessing],
        "input_preprocessing": facts.preprocessing,
        "output": {
            "index": 0,
            "dtype": "float32",
            "shape": [None, facts.num_classes] if classifier else [None, int(facts.pooled.output.shape[-1])],
            "meaning": "class probabilities (softmax inside the model)" if classifier
            else "globally average-pooled last feature map",
        },
        "classes": facts.num_classes,
        "class_names": class_names,
        "params": int(cost.params),
        "mult_adds": int(cost.mult_adds),
        "weights": weights,
        "versions": {"nasnet_keras": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
                     "python": platform.python_version(), **_runtime_versions(fmt, quantize)},
    }
    if fmt.name == "openvino":
        card["inference_precision"] = (
            "compile with INFERENCE_PRECISION_HINT='f32' for float32 results (nasnet predict does); "
            "OpenVINO's CPU default may be bf16 on CPUs with AVX512-BF16/AMX, which changes probabilities by ~1e-2"
        )
    return card


def _runtime_versions(fmt, quantize) -> dict:
    from importlib import metadata

    packages = {"onnx": ("tf2onnx", "onnx", "onnxruntime"), "litert": ("ai-edge-litert",),
                "openvino": ("openvino",)}.get(fmt.name, ())
    if fmt.name == "openvino" and quantize == "int8":
        packages = ("tf2onnx", "onnx", "onnxruntime") + packages
    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found
