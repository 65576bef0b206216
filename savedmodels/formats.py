"""The deployment formats besides the SavedModel: what each is, which runtime runs it, what it supports.

One table, read by the exporter (`savedmodels.deploy`), the runtimes (`savedmodels.runtimes`),
`nasnet predict` and the CLI, so that a format's file name, its runtime extra and the
quantizations it accepts are written once:

| format        | file(s) in the version directory | runtime (setup.py extra)           | --quantize      |
|---------------|----------------------------------|------------------------------------|-----------------|
| `saved_model` | saved_model.pb, variables/       | TensorFlow / TF Serving (core)     | -               |
| `onnx`        | model.onnx                       | ONNX Runtime (`[onnx]`)            | int8            |
| `litert`      | model.tflite                     | LiteRT, ai-edge-litert (`[litert]`)| int8, float16   |
| `openvino`    | model.xml + model.bin            | OpenVINO (`[openvino]`)            | int8            |

The file names are the ones the servers look for in a version directory: Triton's
default `model.onnx`, OpenVINO Model Server's `.xml`/`.bin` pair.

OpenVINO int8 is ONNX Runtime's QDQ int8 model (the onnx format's int8 quantization, with the
preprocessing's Sub quantized too) converted by OpenVINO's `convert_model`: OpenVINO runs QDQ
graphs with its own int8 kernels (VNNI), and measured faster and closer to fp32 than NNCF's
quantization (see `savedmodels.quantize`), so that export needs the `onnx` extra's packages
too (`Format.quantize_modules`).
"""

from __future__ import annotations

import dataclasses
import importlib

from nasnet_keras.checks import check_choice

PACKAGE = "nasnet_keras"


@dataclasses.dataclass(frozen=True)
class Format:
    name: str
    filename: str | None  # the model file in the version directory (None: a SavedModel directory)
    suffix: str | None  # how `nasnet predict` recognises a bare model file
    runtime: str  # what runs it, for messages and the model card
    extra: str | None  # the setup.py extra that installs the runtime (None: a core dependency)
    export_modules: tuple[str, ...]  # what the conversion imports (besides TensorFlow and Keras)
    runtime_module: str  # what running the file imports
    quantizations: tuple[str, ...]  # accepted --quantize values besides "none"
    # what a quantization's conversion imports besides export_modules: {quantize: ((module, extra), ...)}
    quantize_modules: dict = dataclasses.field(default_factory=dict)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("saved_model", None, None, "TensorFlow / TF Serving", None, (), "tensorflow", ()),
        # onnxruntime at export too: int8 quantization is its tool, and a file nobody can run is no export
        Format("onnx", "model.onnx", ".onnx", "ONNX Runtime", "onnx", ("tf2onnx", "onnx", "onnxruntime"),
               "onnxruntime", ("int8",)),
        # the TFLite converter is part of TensorFlow; the runtime is ai-edge-litert
        Format("litert", "model.tflite", ".tflite", "LiteRT (ai-edge-litert)", "litert", (),
               "ai_edge_litert.interpreter", ("int8", "float16")),
        # int8: ONNX Runtime's quantizer writes QDQ ONNX (tf2onnx first), OpenVINO's converter makes the IR
        Format("openvino", "model.xml", ".xml", "OpenVINO", "openvino", ("openvino",), "openvino", ("int8",),
               {"int8": (("tf2onnx", "onnx"), ("onnx", "onnx"), ("onnxruntime", "onnx"))}),
    )
}
DEFAULT_FORMAT = "saved_model"
NO_QUANTIZATION = "none"
QUANTIZATIONS = (NO_QUANTIZATION, "int8", "float16")


class MissingExtraError(ImportError):
    """A runtime's package is not installed; the message says which extra installs it."""


def get(name: str) -> Format:
    """The `Format` called `name`; a clear error listing the formats otherwise."""
    return FORMATS[check_choice("format", name, FORMATS)]


def check_quantization(fmt: Format, quantize: str | None) -> str:
    """`quantize` normalised ("none" for None) if `fmt` supports it, else a ValueError naming what it does."""
    quantize = NO_QUANTIZATION if quantize is None else quantize
    check_choice("quantize", quantize, QUANTIZATIONS)
    if quantize != NO_QUANTIZATION and quantize not in fmt.quantizations:
        supported = ", ".join(repr(q) for q in (NO_QUANTIZATION,) + fmt.quantizations)
        formats = [repr(f.name) for f in FORMATS.values() if quantize in f.quantizations]
        listed = formats[0] if len(formats) == 1 else f"{', '.join(formats[:-1])} and {formats[-1]}"
        raise ValueError(
            f"Format {fmt.name!r} does not support quantize={quantize!r}; it accepts {supported}. "
            f"{quantize!r} is available for format {listed}"
        )
    return quantize


def install_hint(fmt: Format, quantize: str | None = None) -> str:
    """The pip command that installs `fmt`'s runtime (and what its `quantize` conversion needs besides)."""
    extras = [fmt.extra] if fmt.extra else []
    for _, extra in fmt.quantize_modules.get(quantize, ()):
        if extra not in extras:
            extras.insert(0, extra)
    return f"pip install {PACKAGE}[{','.join(extras)}]" if extras else f"pip install {PACKAGE}"


def require(fmt: Format, module: str | None = None, quantize: str | None = None):
    """Import `module` (default: `fmt`'s runtime) for `fmt`, or raise MissingExtraError naming the extra."""
    module = module or fmt.runtime_module
    try:
        return importlib.import_module(module)
    except ImportError as error:
        what = (f"Format {fmt.name!r} with quantize={quantize!r}" if quantize in fmt.quantize_modules
                else f"Format {fmt.name!r} ({fmt.runtime})")
        raise MissingExtraError(
            f"{what} needs the Python package {module!r}, which is not installed "
            f"({error}). Install it with: {install_hint(fmt, quantize)}"
        ) from error


def require_export(fmt: Format, quantize: str | None = None) -> None:
    """Import every module `fmt`'s conversion (with `quantize`) needs, so an export fails before any work."""
    for module in fmt.export_modules:
        require(fmt, module, quantize)
    for module, _ in fmt.quantize_modules.get(quantize, ()):
        require(fmt, module, quantize)


def from_path(path: str) -> Format:
    """The format of an exported model file or directory, from its name and contents."""
    import os

    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            return FORMATS["saved_model"]
        for fmt in FORMATS.values():
            if fmt.filename and os.path.exists(os.path.join(path, fmt.filename)):
                return fmt
        raise ValueError(
            f"Directory {path!r} holds no exported model (looked for saved_model.pb, "
            + ", ".join(f.filename for f in FORMATS.values() if f.filename) + ")"
        )
    for fmt in FORMATS.values():
        if fmt.suffix and path.endswith(fmt.suffix):
            if not os.path.exists(path):
                raise ValueError(f"Model file not found: {path!r}")
            return fmt
    if not os.path.exists(path):
        raise ValueError(f"Model not found: {path!r}")
    suffixes = ", ".join(f.suffix for f in FORMATS.values() if f.suffix)
    raise ValueError(
        f"Cannot tell the format of {path!r}: expected a SavedModel directory, a version directory written by "
        f"`nasnet export`, or a file ending in {suffixes}"
    )
