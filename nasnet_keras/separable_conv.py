"""SeparableConv2D on TensorFlow's faster CPU kernels: a MatMul pointwise half, and a
depthwise filter gradient given its padding explicitly.

With oneDNN on (TensorFlow's default on x86), `DepthwiseConv2dNativeBackpropFilter` with
'SAME' or 'VALID' padding and a 5x5 or 7x7 kernel runs about twice as slow as the same op
given the same padding as explicit numbers ('EXPLICIT'), which oneDNN does not take
(measured 2026-12-01 on this 2-core CPU, median of 15: [32, 28, 28, 88] 5x5 13.6 -> 7.2 ms,
7x7 19.1 -> 12.2 ms; stride 2 on [32, 60, 60, 44] 5x5 9.9 -> 5.1 ms, 7x7 12.8 -> 9.8 ms;
for 3x3 the explicit form is slower, 3.1 -> 4.1 ms). NASNet-A's separable 5x5 and 7x7
branches each run this gradient twice per cell in every training step.

`SeparableConv2D` subclasses `keras.layers.SeparableConv2D` (same constructor, variables,
names, config and file key: the class name is the same on purpose, as for
`nasnet_keras.batch_norm`). For a 4-D channels-last input on TensorFlow with no dilation
and equal strides it computes the same depthwise + pointwise convolution as Keras
(`tf.nn.separable_conv2d`): the depthwise half with TensorFlow's own op and gradient,
except that with static sizes, no GPU visible and a kernel of at least `MIN_KERNEL` the
filter gradient is given its padding explicitly; the pointwise half as a MatMul
(`nasnet_keras.pointwise_conv.pointwise`), into which `call_folded` folds an inference
BatchNorm. Everything else is Keras' own call.
"""

from __future__ import annotations

import keras

from nasnet_keras.pointwise_conv import pointwise, tensorflow_nhwc

# Below this kernel size the explicit-padding filter gradient is slower (3x3 above).
MIN_KERNEL = 5


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'SAME' padding of one spatial dimension, (before, after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _depthwise(x, kernel, strides: int, padding: str):
    """`tf.nn.depthwise_conv2d`, its filter gradient computed with explicit padding."""
    import tensorflow as tf

    stride = [1, strides, strides, 1]
    kh, kw = int(kernel.shape[0]), int(kernel.shape[1])
    if padding == "SAME":
        top, bottom = _same_padding(int(x.shape[1]), kh, strides)
        left, right = _same_padding(int(x.shape[2]), kw, strides)
    else:
        top = bottom = left = right = 0
    explicit = [0, 0, top, bottom, left, right, 0, 0]

    @tf.custom_gradient
    def depthwise(x, kernel):
        y = tf.raw_ops.DepthwiseConv2dNative(input=x, filter=kernel, strides=stride, padding=padding)

        def gradient(dy):
            dx = tf.raw_ops.DepthwiseConv2dNativeBackpropInput(
                input_sizes=tf.shape(x), filter=kernel, out_backprop=dy, strides=stride, padding=padding)
            dk = tf.raw_ops.DepthwiseConv2dNativeBackpropFilter(
                input=x, filter_sizes=tf.shape(kernel), out_backprop=dy, strides=stride, padding="EXPLICIT",
                explicit_paddings=explicit)
            return dx, dk

        return y, gradient

    return depthwise(x, kernel)


def _no_gpu() -> bool:
    import tensorflow as tf

    return not tf.config.list_logical_devices("GPU")


@keras.saving.register_keras_serializable(package="nasnet_keras")
class SeparableConv2D(keras.layers.SeparableConv2D):
    """`keras.layers.SeparableConv2D` with faster CPU kernels (see the module)."""

    def _own_path(self, inputs) -> bool:
        """Whether the shape and settings allow `call`'s own depthwise + pointwise ops."""
        return (
            tensorflow_nhwc(self, inputs)
            and tuple(self.dilation_rate) == (1, 1)
            and self.strides[0] == self.strides[1]
        )

    def uses_explicit_filter_gradient(self, inputs) -> bool:
        return (
            self._own_path(inputs)
            and all(size is not None for size in inputs.shape[1:3])
            and min(self.kernel_size) >= MIN_KERNEL
            and _no_gpu()
        )

    def folds(self, inputs) -> bool:
        """Whether the pointwise half is a MatMul (so an inference BatchNorm can fold in)."""
        return (
            self._own_path(inputs)
            and not self.use_bias
            and self.activation in (None, keras.activations.linear)
        )

    def call(self, inputs):
        if not self._own_path(inputs):
            return super().call(inputs)
        import tensorflow as tf

        x = self._depthwise_part(inputs, self.uses_explicit_filter_gradient(inputs))
        outputs = pointwise(x, self.pointwise_kernel)
        if self.use_bias:
            outputs = outputs + tf.cast(self.bias, outputs.dtype)
        if self.activation is not None:
            return self.activation(outputs)
        return outputs

    def call_folded(self, inputs, affine, relu: bool = False, padding: str | None = None):
        """Inference: depthwise, then the pointwise MatMul with a BatchNorm's `affine` folded in.

        `padding` ('same' or 'valid') overrides the layer's for the depthwise op: the ops
        pass 'same' for a stride-2 'valid' layer fed by `correct_pad`, the same windows
        without the Pad op. (Explicit padding numbers would be as fast, but OpenVINO's
        TensorFlow frontend rejects DepthwiseConv2dNative with explicit padding.)
        """
        x = self._depthwise_part(inputs, False, padding)
        return pointwise(x, self.pointwise_kernel, affine, relu)

    def _depthwise_part(self, inputs, explicit: bool, padding: str | None = None):
        import tensorflow as tf

        depthwise_kernel = tf.cast(self.depthwise_kernel, inputs.dtype)
        strides, padding = int(self.strides[0]), (padding or self.padding).upper()
        if explicit:
            return _depthwise(inputs, depthwise_kernel, strides, padding)
        return tf.nn.depthwise_conv2d(inputs, depthwise_kernel, [1, strides, strides, 1], padding)
