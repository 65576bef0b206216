"""Which layers the models are built from: this package's faster CPU paths, or Keras' own.

By default every model, cell and search child is built on the faster paths (issue 12),
each with exactly Keras' variables, config and file keys, and outputs equal to Keras':

* `nasnet_keras.batch_norm.BatchNormalization`: TensorFlow's fused BatchNorm kernel;
* `nasnet_keras.pointwise_conv.Conv2D` and the pointwise half of
  `nasnet_keras.separable_conv.SeparableConv2D`: 1x1 convolutions as one MatMul, with the
  inference BatchNorm folded into it (`pointwise_conv.conv_norm`);
* `SeparableConv2D`: the depthwise filter gradient on TensorFlow's faster CPU kernel;
* `nasnet_keras.cells.even_odd_samples`: the factorised reduction's two samples from
  one reshape instead of crop, pad and two pools.

`keras_kernels()` builds the models of its block on Keras' own layers and ops instead
(keras.applications' path): the "before" side of `benchmarks/models.py` and
`benchmarks/children.py`, and the reference side of the tests that compare the two.
The choice is made when a layer is constructed, so a model keeps it wherever it is
traced or called later.
"""

from __future__ import annotations

import contextlib
import contextvars

_fast = contextvars.ContextVar("nasnet_keras_fast_kernels", default=True)


def fast() -> bool:
    """Whether layers constructed now take the faster paths (False inside `keras_kernels()`)."""
    return _fast.get()


@contextlib.contextmanager
def keras_kernels():
    """Within this block, models are built on Keras' own layers and ops (see the module).

    Scoped per thread/context, restored on exit.
    """
    token = _fast.set(False)
    try:
        yield
    finally:
        _fast.reset(token)


def keras_kernels_copy(model):
    """`model` rebuilt on Keras' own layers (`keras.models.clone_model` inside `keras_kernels()`),
    holding its current weights; `model` itself when it has none of the faster layers.

    For the deployment converters (ONNX, LiteRT, OpenVINO): they fold BatchNorm into
    convolutions and quantize convolution weights per channel themselves, which the
    faster layers' MatMuls with a folded BatchNorm would defeat (LiteRT int8 agreement on
    the test fixture fell from >= 96% to 95.1% through FULLY_CONNECTED ops). Same weights,
    same outputs to float rounding (tests/models/test_kernels.py).
    """
    import keras

    from nasnet_keras.pointwise_conv import Conv2D
    from nasnet_keras.separable_conv import SeparableConv2D

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
