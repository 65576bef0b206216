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
traced or called later. `nasnet_keras.kernel_copy.keras_kernels_copy` rebuilds a model
on Keras' layers with the same weights (for the deployment converters).
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

