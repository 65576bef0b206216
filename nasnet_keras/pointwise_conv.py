"""1x1 convolutions computed as one matrix product, which oneDNN runs faster on CPU.

A stride-1 1x1 convolution over NHWC is `reshape(x, [N*H*W, C]) @ reshape(w, [C, F])`.
TensorFlow's CPU kernels for the two are both oneDNN's, but the matrix product measured
10-30% faster, forward and backward (2026-12-02, this 2-core CPU, median of 11: [32, 28,
28, 264] -> 44 channels: conv forward 9.2 ms, MatMul 7.9 ms; [32, 56, 56, 44] -> 44: 7.3 vs
4.9 ms; forward + both gradients 19.1 vs 15.6 and 12.3 vs 10.7 ms). NASNet's 1x1
convolutions (every separable conv's pointwise half, every cell's input projections)
are about a third of a training step and half of inference.

`Conv2D` subclasses `keras.layers.Conv2D` (same constructor, variables, config and file
key: the class name is the same on purpose, as for `nasnet_keras.batch_norm`); a 1x1,
stride-1, undilated, channels-last convolution of a 4-D input takes the product on
TensorFlow, anything else Keras' own call. `pointwise` is the shared product, also used
by `nasnet_keras.separable_conv` for the pointwise half.
"""

from __future__ import annotations

import keras

from nasnet_keras.batch_norm import BatchNormalization


def pointwise(x, kernel, affine=None, relu: bool = False):
    """A stride-1 1x1 convolution of NHWC `x` with kernel [1, 1, C, F], as a MatMul.

    `affine` = (scale, offset), float32 [F], folds an inference BatchNorm in: the kernel is
    scaled in float32 before the cast to `x`'s dtype and the offset becomes the bias, which
    Grappler fuses with the MatMul (one op instead of a product and a normalisation pass);
    `relu` applies a ReLU to the result, before the reshape, where Grappler fuses it too.
    """
    import tensorflow as tf

    channels, filters = int(kernel.shape[-2]), int(kernel.shape[-1])
    matrix = tf.reshape(kernel, [channels, filters])
    if affine is not None:
        matrix = tf.cast(matrix, "float32") * affine[0]
    flat = tf.matmul(tf.reshape(x, [-1, channels]), tf.cast(matrix, x.dtype))
    if affine is not None:
        flat = tf.nn.bias_add(flat, tf.cast(affine[1], flat.dtype))
    if relu:
        flat = tf.nn.relu(flat)
    shape = tf.concat([tf.shape(x)[:-1], [filters]], 0) if None in x.shape[1:-1] else [-1, *x.shape[1:-1], filters]
    return tf.reshape(flat, shape)


def can_fold(conv, norm, x, training=None) -> bool:
    """Whether `norm(conv(x))` may run as `conv.call_folded(x, norm.inference_affine())`.

    True when `training` is not True, the BatchNorm is `nasnet_keras.batch_norm`'s with a
    foldable setting, and `conv` is one of this package's layers taking the MatMul path for
    `x` (its `folds(x)`); the folded result equals the unfolded one to float rounding.
    """
    return (
        training is not True
        and not _is_tensor(training)
        and not isinstance(x, keras.KerasTensor)  # symbolic build passes call the layers
        and conv.built
        and norm.built
        and isinstance(norm, BatchNormalization)
        and norm.can_fold()
        and getattr(conv, "folds", None) is not None
        and conv.folds(x)
    )


def conv_norm(conv, norm, x, training=None, relu: bool = False):
    """`norm(conv(x), training=training)` (then a ReLU if `relu`), the BatchNorm (and the ReLU)
    folded into the 1x1 MatMul in inference."""
    if can_fold(conv, norm, x, training):
        return conv.call_folded(x, norm.inference_affine(), relu=relu)
    y = norm(conv(x), training=training)
    return keras.ops.relu(y) if relu else y


def tensorflow_nhwc(layer, inputs) -> bool:
    """Whether `layer` sees a 4-D channels-last input on TensorFlow: where this package's
    convolution paths apply at all (each layer adds its own kernel conditions)."""
    return keras.backend.backend() == "tensorflow" and layer.data_format == "channels_last" and len(inputs.shape) == 4


def _is_tensor(value) -> bool:
    return value is not None and not isinstance(value, bool)


@keras.saving.register_keras_serializable(package="nasnet_keras")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose 1x1 stride-1 case is a MatMul on TensorFlow (see the module)."""

    def folds(self, inputs) -> bool:
        """Whether this input takes the MatMul (and so an inference BatchNorm can fold in)."""
        return (
            tensorflow_nhwc(self, inputs)
            and tuple(self.kernel_size) == (1, 1)
            and tuple(self.strides) == (1, 1)
            and tuple(self.dilation_rate) == (1, 1)
            and self.groups == 1
            and not self.use_bias
            and self.activation in (None, keras.activations.linear)
        )

    def call(self, inputs):
        if not self.folds(inputs):
            return super().call(inputs)
        return pointwise(inputs, self.kernel)

    def call_folded(self, inputs, affine, relu: bool = False):
        return pointwise(inputs, self.kernel, affine, relu)
