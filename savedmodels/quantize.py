"""Post-training quantization through the runtimes' own tools.

* ONNX Runtime int8: `onnxruntime.quantization.quantize_static` on the fp32 `.onnx` file,
  with a `CalibrationDataReader` over the calibration images. QDQ format (what ONNX
  Runtime's CPU provider fuses into integer kernels), per-channel int8 weights (NASNet's
  depthwise separable convolutions lose too much with one scale per tensor), unsigned
  8-bit activations (the VNNI-friendly U8S8 combination ONNX Runtime recommends on x86),
  after ONNX Runtime's own pre-processing (shape inference and graph optimisation).
* OpenVINO int8: that QDQ file converted by OpenVINO's `convert_model` into an IR whose
  QuantizeLinear/DequantizeLinear pairs are FakeQuantize nodes, which OpenVINO's CPU
  plugin executes with its int8 kernels (u8 activations x i8 weights, VNNI). Measured on
  NASNet-A Mobile (OpenVINO's per-node profile, 2026-12-01): every convolution and
  depthwise convolution runs int8. NNCF's `nncf.quantize` on the IR that Keras' OpenVINO
  export writes was slower: that IR keeps 12 NHWC/NCHW Transposes around the factorized
  reductions' slice and pad, and the 1x1 stride-2 average pool there fell to OpenVINO's
  reference int8 kernel (~20 ms of ~50 ms), while tf2onnx's graph has neither.
* LiteRT float16: converter settings for `model.export(format="litert", ...)` (the TFLite
  converter): `Optimize.DEFAULT` with `supported_types=[float16]` (float16 weights,
  dequantized at load).
* LiteRT int8: the TFLite converter's `Optimize.DEFAULT` with a representative dataset (int8
  weights per channel and activations per tensor, float32 input and output so the model
  still takes raw pixels), through the converter's selective quantization
  (`tf.lite.experimental.QuantizationDebugger`, `denylisted_ops`) that keeps the classifier
  head -- the one FULLY_CONNECTED and the SOFTMAX, a negligible share of the compute -- in
  float. Measured on `benchmarks/deploy_agreement.py`'s model (2026-12-01): fully int8, the
  int8 logits put the top class elsewhere on 2.03% of the Fashion-MNIST test images (97.97%
  agreement); keeping the softmax alone in float changed nothing, keeping the head in float
  gave 98.06%. More calibration images did not help: 1,000 gave 97.75%, 3,000 97.45% (min/max
  ranges widen with more outliers). Keras' exporter cannot pass `denylisted_ops`, so this path
  builds the converter itself from the frozen inference function (the same graph).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

CALIBRATION_BATCH = 8


def onnx_int8(fp32_path: str, int8_path: str, images: np.ndarray, input_name: str) -> None:
    """Quantize the ONNX model at `fp32_path` to int8 at `int8_path`, calibrated on `images`."""
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self._batches = iter(np.array_split(images, max(1, len(images) // CALIBRATION_BATCH)))

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(int8_path))) as work:
        prepared = os.path.join(work, "prepared.onnx")
        quant_pre_process(fp32_path, prepared, skip_symbolic_shape=True)
        q.quantize_static(
            prepared,
            int8_path,
            Reader(),
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=q.CalibrationMethod.MinMax,
        )


def openvino_from_onnx(onnx_path: str, xml_path: str) -> None:
    """Convert the (QDQ int8) ONNX model at `onnx_path` to OpenVINO IR `xml_path` (+ .bin) with OpenVINO's tools."""
    import openvino as ov

    # compress_to_fp16=False: keep the float32 scales and biases as they were calibrated
    ov.save_model(ov.convert_model(onnx_path), xml_path, compress_to_fp16=False)


LITERT_FLOAT_OPS = ("FULLY_CONNECTED", "SOFTMAX")  # the classifier head, kept float in LiteRT int8


def litert_options(quantize: str) -> dict:
    """Converter attributes for Keras' LiteRT export (`model.export(format="litert", **options)`): fp32, float16."""
    import tensorflow as tf

    if quantize == "none":
        return {}
    if quantize == "float16":
        return {"optimizations": [tf.lite.Optimize.DEFAULT], "target_spec": {"supported_types": [tf.float16]}}
    raise ValueError(f"No LiteRT converter options for quantize={quantize!r} (int8: litert_int8)")


def litert_int8(network, spec, images: np.ndarray, path: str, float_ops=LITERT_FLOAT_OPS) -> None:
    """Write `network` as int8 LiteRT to `path`, calibrated on `images`, with `float_ops` left in float."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    # frozen: the debugger's calibration interpreter does not run a resource-variable initializer
    function = convert_variables_to_constants_v2(tf.function(lambda x: network(x)).get_concrete_function(spec))

    def representative_dataset():
        for image in images:
            yield [image[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=representative_dataset,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(float_ops)))
    with open(path, "wb") as f:
        f.write(debugger.get_nondebug_quantized_model())
