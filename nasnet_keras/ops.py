"""The op registry: the paper's 13 operations as Keras layers, under their genotype names.

Every op follows the conventions of the paper (Sec. 3, App. A.4) and of TF-slim's
`nasnet_utils._apply_conv_operation`, so that NASNet-A built from the table matches the
reference implementations weight for weight:

* convolutions are ReLU -> conv -> BN; separable ones are applied twice, with no BN/ReLU
  between depthwise and pointwise parts;
* `stride` (2 in a Reduction cell, only for ops that read a cell input) is applied by the
  op itself; `identity` becomes ReLU -> strided 1x1 conv -> BN when it must change the
  shape, and a pooling op is followed by a 1x1 conv + BN when channels differ;
* strided pooling zero-pads as keras.applications does (`correct_pad`, then 'valid'),
  which is what its published weights were trained with; TF-slim pools 'SAME' instead.

Sub-layer names follow keras.applications' scheme (`separable_conv_1_<tag>`, ...) so a
Keras weight file maps onto our cells by name.
"""

from __future__ import annotations

from typing import Callable

import keras
from keras import layers

from nasnet_keras.kernels import fast as fast_kernels
from nasnet_keras.batch_norm import batch_norm_layer
from nasnet_keras.pointwise_conv import Conv2D, can_fold, conv_norm
from nasnet_keras.separable_conv import SeparableConv2D
from nasnet_keras.genotype import OPS


def correct_pad(shape, kernel_size: int):
    """Zero padding that makes a stride-2 'valid' window match TF's 'SAME' placement."""
    height, width = shape[1], shape[2]
    adjust = (1, 1) if height is None or width is None else (1 - height % 2, 1 - width % 2)
    half = kernel_size // 2
    return ((half - adjust[0], half), (half - adjust[1], half))


class ConvBNFactory:
    """Makes every convolution and BatchNorm of a model with one set of settings.

    BatchNorm momentum / epsilon and L2 weight decay are per model (Keras' 0.9997 / 1e-3,
    slim's CIFAR 0.9 / 1e-5), so one object carries them to every op, cell and skeleton
    instead of a global; all convolutions are bias-free (a BatchNorm follows each).
    """

    def __init__(self, momentum: float = 0.9997, epsilon: float = 1e-3, weight_decay: float = 0.0):
        self.momentum = momentum
        self.epsilon = epsilon
        self.weight_decay = weight_decay

    def regularizer(self):
        # TF-slim's l2_regularizer(wd) is wd * sum(w**2) / 2; Keras' L2(l) is l * sum(w**2).
        return keras.regularizers.L2(self.weight_decay / 2.0) if self.weight_decay else None

    def batch_norm(self, name: str) -> layers.BatchNormalization:
        # Fused kernel on TensorFlow, Keras' own variables and semantics (nasnet_keras.batch_norm).
        return batch_norm_layer(axis=-1, momentum=self.momentum, epsilon=self.epsilon, name=name)

    def conv(self, filters: int, kernel_size, name: str, strides=1, dilation_rate=1,
             padding="same") -> layers.Conv2D:
        # Keras' layer; 1x1 stride-1 ones run as a MatMul on TensorFlow (nasnet_keras.pointwise_conv).
        cls = Conv2D if fast_kernels() else layers.Conv2D
        return cls(filters, kernel_size, strides=strides, dilation_rate=dilation_rate, padding=padding,
                      use_bias=False, kernel_initializer="he_normal", kernel_regularizer=self.regularizer(),
                      name=name)

    def separable_conv(self, filters: int, kernel_size: int, name: str, strides=1,
                       padding="same") -> layers.SeparableConv2D:
        # Keras' layer with faster CPU kernels (nasnet_keras.separable_conv).
        cls = SeparableConv2D if fast_kernels() else layers.SeparableConv2D
        return cls(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                                      depthwise_regularizer=self.regularizer(),
                                      pointwise_regularizer=self.regularizer(), name=name)


class CellOp(layers.Layer):
    """Base of the registered ops: one path of a block, `filters` channels out.

    Sub-layers are created in `build`, once the input channel count is known, because
    whether a 1x1 projection is needed depends on it.
    """

    def __init__(self, filters: int, strides: int, tag: str, bn: ConvBNFactory, **kwargs):
        super().__init__(name=tag, **kwargs)
        self.filters = filters
        self.strides = strides
        self.tag = tag
        self.bn = bn

    def compute_output_shape(self, input_shape):
        def reduce(size):
            return None if size is None else -(-size // self.strides)

        return (input_shape[0], reduce(input_shape[1]), reduce(input_shape[2]), self.filters)


class IdentityOp(CellOp):
    """Identity; a ReLU -> 1x1 conv (strided if needed) -> BN when the shape must change."""

    def build(self, input_shape):
        self.project = self.strides > 1 or input_shape[-1] != self.filters
        if self.project:
            self.conv = self.bn.conv(self.filters, 1, strides=self.strides, name=f"{self.tag}_1x1")
            self.norm = self.bn.batch_norm(f"{self.tag}_bn")
            self.conv.build(input_shape)
            self.norm.build(self.compute_output_shape(input_shape))

    def call(self, x, training=None):
        if not self.project:
            return x
        return conv_norm(self.conv, self.norm, keras.ops.relu(x), training)


class SeparableConvOp(CellOp):
    """(ReLU -> separable conv -> BN) twice; only the first application is strided."""

    def __init__(self, filters, strides, tag, bn, kernel_size: int, **kwargs):
        super().__init__(filters, strides, tag, bn, **kwargs)
        self.kernel_size = kernel_size
        k = kernel_size
        self.sep_1 = bn.separable_conv(filters, k, strides=strides, name=f"separable_conv_1_{tag}",
                                       padding="valid" if strides > 1 else "same")
        self.bn_1 = bn.batch_norm(f"separable_conv_1_bn_{tag}")
        self.sep_2 = bn.separable_conv(filters, k, name=f"separable_conv_2_{tag}")
        self.bn_2 = bn.batch_norm(f"separable_conv_2_bn_{tag}")

    def build(self, input_shape):
        out = self.compute_output_shape(input_shape)
        self.sep_1.build(padded_shape(input_shape, self.kernel_size) if self.strides > 1 else input_shape)
        self.bn_1.build(out)
        self.sep_2.build(out)
        self.bn_2.build(out)

    def call(self, x, training=None):
        x = keras.ops.relu(x)
        if self.strides > 1 and can_fold(self.sep_1, self.bn_1, x, training):
            # Inference: for a stride-2 convolution, `correct_pad` + 'valid' places the window
            # exactly as 'SAME' does, so the depthwise op pads itself and no Pad op runs.
            x = self.sep_1.call_folded(x, self.bn_1.inference_affine(), relu=True, padding="same")
        else:
            if self.strides > 1:
                x = pad_for_stride(x, self.kernel_size)
            x = conv_norm(self.sep_1, self.bn_1, x, training, relu=True)
        return conv_norm(self.sep_2, self.bn_2, x, training)


class ConvOp(CellOp):
    """ReLU -> one or more convolutions -> BN (3x3, 1x1, factorised 1xk-kx1, dilated)."""

    def __init__(self, filters, strides, tag, bn, kernels: tuple, dilation_rate: int = 1, **kwargs):
        super().__init__(filters, strides, tag, bn, **kwargs)
        self.kernels = kernels
        self.dilation_rate = dilation_rate
        # Keras cannot combine a stride with a dilation, so a strided dilated conv runs at
        # stride 1 and keeps every second row/column (same receptive field, same output size).
        self.subsample = dilation_rate > 1 and strides > 1
        conv_strides = 1 if self.subsample else strides
        self.convs = [
            bn.conv(filters, kernel, strides=conv_strides if i == 0 else 1, dilation_rate=dilation_rate,
                    name=f"{tag}_conv_{i + 1}")
            for i, kernel in enumerate(kernels)
        ]
        self.norm = bn.batch_norm(f"{tag}_bn")

    def build(self, input_shape):
        shape = input_shape
        for conv in self.convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        self.norm.build(self.compute_output_shape(input_shape))

    def call(self, x, training=None):
        x = keras.ops.relu(x)
        if len(self.convs) == 1 and not self.subsample:
            return conv_norm(self.convs[0], self.norm, x, training)
        for conv in self.convs:
            x = conv(x)
        if self.subsample:
            x = x[:, :: self.strides, :: self.strides, :]
        return self.norm(x, training=training)


def _dynamic_correct_pad(x, kernel_size: int):
    """`correct_pad` for sizes known only at run time (input_shape=(None, None, 3))."""
    import tensorflow as tf

    half = kernel_size // 2
    size = tf.shape(x)[1:3]
    before = half - (1 - size % 2)
    zeros = tf.zeros((1,), tf.int32)
    paddings = tf.stack([tf.concat([zeros, before, zeros], 0), tf.constant([0, half, half, 0])], axis=1)
    return tf.pad(x, paddings)


def padded_shape(shape, kernel_size: int) -> tuple:
    """The shape `pad_for_stride` produces (None stays None)."""
    (top, bottom), (left, right) = correct_pad(shape, kernel_size)
    grow = lambda size, extra: None if size is None else size + extra  # noqa: E731
    return (shape[0], grow(shape[1], top + bottom), grow(shape[2], left + right)) + tuple(shape[3:])


def pad_for_stride(x, kernel_size: int):
    """Zero-pad so that a stride-2 'valid' window is placed like TF's 'SAME' one.

    keras.applications writes every strided NASNet op this way (ZeroPadding2D with
    `correct_pad`, then 'valid'); for pooling it changes the numbers (zeros enter the
    window), for convolutions it is equal to 'SAME' but measured faster on CPU (oneDNN).
    """
    if x.shape[1] is None or x.shape[2] is None:
        return _dynamic_correct_pad(x, kernel_size)
    return keras.ops.pad(x, ((0, 0),) + correct_pad(x.shape, kernel_size) + ((0, 0),))


class PoolOp(CellOp):
    """Average or max pooling; zero-pad + 'valid' when strided (keras.applications), then a
    1x1 conv + BN (no ReLU, as TF-slim) when the input channels differ from `filters`."""

    def __init__(self, filters, strides, tag, bn, kind: str, pool_size: int, **kwargs):
        super().__init__(filters, strides, tag, bn, **kwargs)
        self.kind = kind
        self.pool_size = pool_size
        pool_cls = layers.AveragePooling2D if kind == "avg" else layers.MaxPooling2D
        padding = "valid" if strides > 1 else "same"
        self.pool = pool_cls(pool_size, strides=strides, padding=padding, name=tag + "_pool")

    def build(self, input_shape):
        self.project = input_shape[-1] != self.filters
        if self.project:
            out = self.compute_output_shape(input_shape)
            self.conv = self.bn.conv(self.filters, 1, name=f"{self.tag}_1x1")
            self.norm = self.bn.batch_norm(f"{self.tag}_bn")
            self.conv.build(out[:-1] + (input_shape[-1],))
            self.norm.build(out)

    def call(self, x, training=None):
        if self.strides > 1:
            x = pad_for_stride(x, self.pool_size)
        x = self.pool(x)
        if self.project:
            x = conv_norm(self.conv, self.norm, x, training)
        return x


OpFactory = Callable[[int, int, str, ConvBNFactory], CellOp]


def _sep(k):
    return lambda filters, strides, tag, bn: SeparableConvOp(filters, strides, tag, bn, kernel_size=k)


def _conv(kernels, dilation_rate=1):
    return lambda filters, strides, tag, bn: ConvOp(filters, strides, tag, bn, kernels, dilation_rate)


def _pool(kind, size):
    return lambda filters, strides, tag, bn: PoolOp(filters, strides, tag, bn, kind=kind, pool_size=size)


OP_REGISTRY: dict[str, OpFactory] = {
    "identity": lambda filters, strides, tag, bn: IdentityOp(filters, strides, tag, bn),
    "conv_1x3_3x1": _conv(((1, 3), (3, 1))),
    "conv_1x7_7x1": _conv(((1, 7), (7, 1))),
    "dil_conv_3x3": _conv(((3, 3),), dilation_rate=2),
    "avg_pool_3x3": _pool("avg", 3),
    "max_pool_3x3": _pool("max", 3),
    "max_pool_5x5": _pool("max", 5),
    "max_pool_7x7": _pool("max", 7),
    "conv_1x1": _conv(((1, 1),)),
    "conv_3x3": _conv(((3, 3),)),
    "sep_conv_3x3": _sep(3),
    "sep_conv_5x5": _sep(5),
    "sep_conv_7x7": _sep(7),
}

assert tuple(OP_REGISTRY) == OPS, "the registry and the genotype's op names must list the same ops"


def make_op(name: str, filters: int, strides: int, tag: str, bn: ConvBNFactory) -> CellOp:
    try:
        factory = OP_REGISTRY[name]
    except KeyError:
        raise ValueError(f"Unknown op {name!r}. Accepted ops: {', '.join(OP_REGISTRY)}") from None
    return factory(filters, strides, tag, bn)
