"""BatchNormalization on TensorFlow's fused kernel, with exactly Keras' variables and semantics.

Keras 3 on TensorFlow normalises with `tf.nn.moments` + `tf.nn.batch_normalization`:
about ten element-wise ops forward and a dozen more in the gradient, each a full pass
over the activation. NASNet has a BatchNorm after every convolution, so on a CPU those
passes cost as much as the depthwise convolutions. `FusedBatchNormV3` does the same in
one kernel each way (measured 1.65x faster for a training step on [32, 56, 56, 88]), and
in inference Grappler's remapper can fold it into the preceding convolution.

`BatchNormalization` (alias `FusedBatchNormalization`) subclasses
`keras.layers.BatchNormalization` (same constructor, same variables `gamma`, `beta`,
`moving_mean`, `moving_variance` in the same order, same `get_config`, same saving key),
so Keras, keras.applications and older nasnet_keras weight files and checkpoints load
into it unchanged. Only
`call` differs, and only where the fused kernel computes the same thing:

* the backend is TensorFlow, the input is 4-D NHWC (axis = -1), float16/bfloat16/float32,
  with no mask, no renorm and no `synchronized` statistics, and epsilon >= 1e-5 (cuDNN's
  minimum; TF would silently raise a smaller one);
* in training the kernel returns the Bessel-corrected batch variance, while Keras updates
  `moving_variance` with the biased one: it is scaled back by (n - 1) / n, and both moving
  averages are updated with Keras' own expression;
* under a mixed policy the kernel takes the float16 input with float32 parameters and
  accumulates in float32, as Keras' upcast does.

Anything else takes Keras' own path (`super().call`). Inside
`nasnet_keras.kernels.keras_kernels()`, `batch_norm_layer` builds plain Keras layers
instead, for before/after measurements.
"""

from __future__ import annotations

import keras

from nasnet_keras.kernels import fast as fast_kernels

# cuDNN rejects smaller values, and tf.nn.fused_batch_norm raises them to 1.001e-5.
MIN_FUSED_EPSILON = 1e-5
_FUSED_DTYPES = ("float16", "bfloat16", "float32")


@keras.saving.register_keras_serializable(package="nasnet_keras")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by TensorFlow's fused kernel where it can be.

    The class is called `BatchNormalization` on purpose: Keras 3 keys the layers of a
    model's layer list in `.keras` and `.weights.h5` files by their class name
    ("batch_normalization", "batch_normalization_1", ...), so any other name would make
    checkpoints and weight files of the same model incompatible across the change.
    """

    def can_fuse(self, inputs, mask=None) -> bool:
        """Whether `call` takes the fused kernel for these inputs (else Keras' own path)."""
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and self.epsilon >= MIN_FUSED_EPSILON
            and keras.backend.standardize_dtype(inputs.dtype) in _FUSED_DTYPES
        )

    def can_fold(self) -> bool:
        """Whether `inference_affine` describes this layer's inference (see `conv_norm`)."""
        return (
            keras.backend.backend() == "tensorflow"
            and not self.renorm
            and not self.synchronized
            and self.axis in (-1, 3)
        )

    def inference_affine(self):
        """(scale, offset), float32 [C]: inference BatchNorm as y = x * scale + offset.

        For folding into the preceding 1x1 convolution (`nasnet_keras.pointwise_conv`):
        Keras' inference expression, gamma * (x - mean) / sqrt(variance + epsilon) + beta.
        """
        import tensorflow as tf

        variance = tf.cast(self.moving_variance, "float32")
        scale = tf.math.rsqrt(variance + self.epsilon)
        if self.scale:
            scale = scale * tf.cast(self.gamma, "float32")
        offset = -tf.cast(self.moving_mean, "float32") * scale
        if self.center:
            offset = offset + tf.cast(self.beta, "float32")
        return scale, offset

    def call(self, inputs, training=None, mask=None):
        if not self.can_fuse(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones((channels,), "float32")
        beta = self.beta if self.center else tf.zeros((channels,), "float32")
        gamma = tf.cast(gamma, "float32")
        beta = tf.cast(beta, "float32")
        if training and self.trainable:
            empty = tf.constant([], "float32")
            y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=gamma, offset=beta, mean=empty, variance=empty,
                epsilon=self.epsilon, data_format="NHWC", is_training=True,
            )
            variance = variance * _biased_variance_factor(inputs)
            momentum = self.momentum
            moving_mean = tf.cast(self.moving_mean, "float32")
            moving_variance = tf.cast(self.moving_variance, "float32")
            self.moving_mean.assign(moving_mean * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(moving_variance * momentum + variance * (1.0 - momentum))
        else:
            y, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=gamma, offset=beta,
                mean=tf.cast(self.moving_mean, "float32"), variance=tf.cast(self.moving_variance, "float32"),
                epsilon=self.epsilon, data_format="NHWC", is_training=False,
            )
        return tf.cast(y, self.compute_dtype)


def _biased_variance_factor(inputs):
    """(n - 1) / n for the n values per channel: undoes the kernel's Bessel correction.

    The kernel divides by max(n - 1, 1), so n = 1 keeps factor 1 (its variance is 0 anyway).
    """
    import tensorflow as tf

    static = inputs.shape[:-1]
    if all(size is not None for size in static):
        n = 1
        for size in static:
            n *= int(size)
        return (n - 1) / n if n > 1 else 1.0
    n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), "float32")
    return tf.where(n > 1.0, (n - 1.0) / tf.maximum(n, 1.0), 1.0)


FusedBatchNormalization = BatchNormalization  # the name that says what it is; the same class


def batch_norm_layer(**kwargs) -> keras.layers.BatchNormalization:
    """A BatchNorm layer for the models: fused unless inside `nasnet_keras.kernels.keras_kernels()`."""
    cls = BatchNormalization if fast_kernels() else keras.layers.BatchNormalization
    return cls(**kwargs)
