"""A model rebuilt on Keras' own layers, same weights: what the deployment converters get.

Separate from `nasnet_keras.kernels` because it needs the layer classes, which read that
module's switch.
"""

from __future__ import annotations

import keras

from nasnet_keras.kernels import keras_kernels
from nasnet_keras.pointwise_conv import Conv2D
from nasnet_keras.separable_conv import SeparableConv2D


def keras_kernels_copy(model):
    """`model` rebuilt on Keras' own layers (`keras.models.clone_model` inside `keras_kernels()`),
    holding its current weights; `model` itself when it has none of the faster layers.

    For the deployment converters (ONNX, LiteRT, OpenVINO): they get the convolution +
    BatchNorm graph they were validated with, fold the BatchNorm and quantize
    convolutions per channel themselves, instead of MatMuls with a BatchNorm folded in by
    us (which LiteRT turns into per-tensor FULLY_CONNECTED ops). On the int8 test fixture
    both exports agreed alike (94.7% with the copy, 95.1% without; 2026-12-02), so this is
    for the converters' sake, not a measured accuracy gain. Same weights, same outputs to
    float rounding (tests/models/test_kernels.py).
    """
    fast_layers = (Conv2D, SeparableConv2D)  # the others' inference graphs are Keras' already
    if not any(isinstance(layer, fast_layers) for layer in model._flatten_layers(include_self=False, recursive=True)):
        return model

    def keras_layer(layer):  # top-level layers: Keras' classes for ours; cells rebuild inside keras_kernels()
        for ours, theirs in ((Conv2D, keras.layers.Conv2D), (SeparableConv2D, keras.layers.SeparableConv2D)):
            if type(layer) is ours:
                return theirs.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    with keras_kernels():
        copy = keras.models.clone_model(model, clone_function=keras_layer)
    copy.set_weights(model.get_weights())
    return copy
