"""Run any export -- SavedModel, `.onnx`, `.tflite`, OpenVINO `.xml` -- with its own runtime.

`load(path)` returns a `Runner`: `runner(images)` takes float32 RGB 0..255 [batch, H, W, 3]
(what every export takes) and returns the model's first output as a NumPy array
(probabilities, or pooled features for a model without a head). Used by `nasnet predict`,
the parity tests and `benchmarks/deploy.py`, so all three run the formats the same way.

OpenVINO runs at inference precision f32 by default: its CPU plugin otherwise picks bf16
on CPUs with AVX512-BF16/AMX, which moves probabilities by ~1e-2 (`precision="default"`
keeps the plugin's choice).
"""

from __future__ import annotations

import json
import os

import numpy as np

from savedmodels import formats

OPENVINO_PRECISIONS = ("f32", "default")


def _threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Runner:
    """One loaded model; call it with float32 pixel batches."""

    format: str
    input_size: tuple[int, int] | None = None

    def __init__(self, path: str, card: dict | None):
        self.path = path
        self.card = card
        if card and card.get("input_size"):
            self.input_size = tuple(card["input_size"][:2])

    @property
    def has_classes(self) -> bool:
        """False for a model without a classifier head (its output is pooled features)."""
        return (self.card or {}).get("kind") != "features"

    @property
    def class_names(self) -> list[str] | None:
        return (self.card or {}).get("class_names")

    def __call__(self, images) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"Expected float32 images [batch, H, W, 3] (RGB 0..255). Received shape {images.shape}")
        if self.input_size and tuple(images.shape[1:3]) != tuple(self.input_size):
            raise ValueError(f"This model takes {self.input_size[0]}x{self.input_size[1]} images. "
                             f"Received shape {images.shape}")
        return self._run(images)

    def _run(self, images) -> np.ndarray:
        raise NotImplementedError


class SavedModelRunner(Runner):
    format = "saved_model"

    def __init__(self, path, card):
        super().__init__(path, card)
        import tensorflow as tf

        from savedmodels import signatures as sigs

        self._tf = tf
        self._fn = tf.saved_model.load(path).signatures[sigs.DEFAULT]
        spec = self._fn.structured_input_signature[1][sigs.IMAGES_INPUT]
        self.input_size = self.input_size or tuple(spec.shape[1:3])
        self._key = "probabilities" if "probabilities" in self._fn.structured_outputs else "features"

    @property
    def has_classes(self) -> bool:
        return self._key == "probabilities"

    def _run(self, images):
        return self._fn(images=self._tf.constant(images))[self._key].numpy()


class OnnxRunner(Runner):
    format = "onnx"

    def __init__(self, path, card, threads: int | None = None):
        super().__init__(path, card)
        ort = formats.require(formats.FORMATS["onnx"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or _threads()
        self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        first = self._session.get_inputs()[0]
        self._input = first.name
        if self.input_size is None and all(isinstance(d, int) for d in first.shape[1:3]):
            self.input_size = tuple(first.shape[1:3])

    def _run(self, images):
        return self._session.run(None, {self._input: images})[0]


class LiteRTRunner(Runner):
    format = "litert"

    def __init__(self, path, card, threads: int | None = None):
        super().__init__(path, card)
        interpreter = formats.require(formats.FORMATS["litert"])
        self._interpreter = interpreter.Interpreter(model_path=path, num_threads=threads or _threads())
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self.input_size = self.input_size or tuple(int(d) for d in self._input["shape"][1:3])
        self._batch = None

    def _run(self, images):
        if images.shape[0] != self._batch:
            self._interpreter.resize_tensor_input(self._input["index"], images.shape)
            self._interpreter.allocate_tensors()
            self._batch = images.shape[0]
        self._interpreter.set_tensor(self._input["index"], images)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()


class OpenVINORunner(Runner):
    format = "openvino"

    def __init__(self, path, card, precision: str = "f32"):
        super().__init__(path, card)
        from nasnet_keras.checks import check_choice

        check_choice("precision", precision, OPENVINO_PRECISIONS)
        ov = formats.require(formats.FORMATS["openvino"])
        core = ov.Core()
        config = {} if precision == "default" else {"INFERENCE_PRECISION_HINT": precision}
        self._compiled = core.compile_model(path, "CPU", config)
        hint = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)  # "f32", "bf16"
        shape = self._compiled.input(0).get_partial_shape()
        if self.input_size is None and shape[1].is_static and shape[2].is_static:
            self.input_size = (shape[1].get_length(), shape[2].get_length())
        self._request = self._compiled.create_infer_request()

    def _run(self, images):
        return np.array(self._request.infer([images])[self._compiled.output(0)])


RUNNERS = {cls.format: cls for cls in (SavedModelRunner, OnnxRunner, LiteRTRunner, OpenVINORunner)}


def model_file(path: str) -> tuple[formats.Format, str]:
    """(format, the path its runtime opens) for a model file, SavedModel or version directory."""
    path = os.fspath(path)
    fmt = formats.from_path(path)
    if os.path.isdir(path) and fmt.filename:
        return fmt, os.path.join(path, fmt.filename)
    return fmt, path


def read_card(path: str) -> dict | None:
    """The model card beside (or inside) an export, or None when there is none."""
    from savedmodels.deploy import CARD_FILENAME

    directory = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    card = os.path.join(directory, CARD_FILENAME)
    if not os.path.exists(card):
        return None
    with open(card, encoding="utf-8") as f:
        return json.load(f)


def load(path: str, *, precision: str = "f32", threads: int | None = None) -> Runner:
    """Open an export with its runtime. `precision`: OpenVINO's inference precision ("f32" or "default")."""
    fmt, file = model_file(path)
    card = read_card(file if fmt.filename else path)
    if fmt.name == "openvino":
        return OpenVINORunner(file, card, precision=precision)
    if fmt.name in ("onnx", "litert"):
        return RUNNERS[fmt.name](file, card, threads=threads)
    return SavedModelRunner(file, card)
