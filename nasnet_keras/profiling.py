"""Accounting: parameters and Mult-Adds, the paper's cost measures (Tables 2-4).

Mult-Adds are counted from the TensorFlow graph of one forward pass at batch 1, so they
cover any Keras model (ours or keras.applications') the same way: every multiply-
accumulate of a convolution (standard, depthwise, dilated) and of a dense layer.
Pooling, BatchNorm, additions and activations are not counted, as is usual for the
paper's figure (its 564M for NASNet-A Mobile is matched this way).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class Profile:
    params: int
    trainable_params: int
    mult_adds: int
    input_shape: tuple

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def count_mult_adds(model, input_shape=None) -> int:
    """Multiply-accumulates of `model` for one image (inference graph, batch 1)."""
    import tensorflow as tf

    shape = tuple(input_shape or model.input_shape[1:])
    if any(s is None for s in shape):
        raise ValueError(f"Mult-Adds need a static input shape; received {shape}. Pass input_shape=(H, W, C).")

    @tf.function
    def forward(x):
        return model(x, training=False)

    graph = forward.get_concrete_function(tf.TensorSpec((1,) + shape, tf.float32)).graph
    total = 0
    for op in graph.get_operations():
        if op.type == "Conv2D":
            kh, kw, cin, _ = op.inputs[1].shape
            total += math.prod(op.outputs[0].shape[1:]) * kh * kw * cin
        elif op.type == "DepthwiseConv2dNative":
            kh, kw, _, _ = op.inputs[1].shape
            total += math.prod(op.outputs[0].shape[1:]) * kh * kw
        elif op.type in ("MatMul", "BatchMatMulV2"):
            a = op.inputs[0].shape
            transpose_a = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
            inner = a[-2] if transpose_a else a[-1]
            total += math.prod(op.outputs[0].shape) * inner
    return int(total)


def profile(model, input_shape=None) -> Profile:
    """Parameters (all / trainable; drop-path schedule scalars excluded) and Mult-Adds."""
    from nasnet_keras.drop_path import drop_path_layers

    schedule_scalars = sum(len(layer.weights) for layer in drop_path_layers(model))
    params = int(sum(np.prod(w.shape) for w in model.weights)) - schedule_scalars
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    shape = tuple(input_shape or model.input_shape[1:])
    return Profile(params, trainable, count_mult_adds(model, shape), shape)


def format_count(value: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return str(int(value))
