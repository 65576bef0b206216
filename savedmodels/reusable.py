"""The reusable-SavedModel root: a fine-tunable object for TF Hub / tf_keras / Model Garden code.

`keras.Model.export()` writes serving signatures only; a signature has no training mode,
no variable lists and no regularisation losses, so nothing can fine-tune through it, and
a Keras 3 model called inside a tf_keras model is not trained (its variables are not
tracked; reference.md §5). TF Hub's "reusable SavedModel" convention
(tensorflow/hub docs/reusable_saved_models.md) fills that gap. Its root object has

* `variables`, `trainable_variables`: the underlying `tf.Variable`s of the Keras model
  (BatchNorm moving statistics are in `variables` only);
* `regularization_losses`: a list of argument-less `tf.function`s (here at most one,
  the sum of the model's weight-decay terms);
* `__call__(images, training=False)`: traced once for `training=True` and once for
  `training=False`, because `hub.KerasLayer` passes a Python bool. In training mode
  the BatchNorm layers use batch statistics and assign their moving averages inside the
  traced function, so fine-tuning through `hub.KerasLayer(path, trainable=True)` updates
  them as a Keras BatchNorm layer would. With `frozen_batchnorm=True` the training trace
  normalises with the moving statistics instead and leaves them alone, while scale and
  offset still train: the TF1 Object Detection API's default for NASNet detectors, whose
  batches of 1-4 images give useless batch statistics.

`images` are float32 [batch, H, W, 3] RGB in [0, 1], TF Hub's image convention; the
scaling to the model's [-1, 1] happens inside. A classifier returns the head's output
(probabilities for the usual softmax head); a backbone returns a dict of feature maps
keyed by level str(log2(stride)) ('2'..'5' for the ImageNet skeleton), Model Garden's
backbone convention.

The Keras model itself is deliberately not tracked by the root: only its variables and the
traced functions are saved, so the SavedModel does not depend on Keras 3 to load.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from savedmodels.introspect import ModelFacts

CLASSIFIER = "classifier"
BACKBONE = "backbone"
KINDS = (CLASSIFIER, BACKBONE)


class ReusableModule(tf.train.Checkpoint):
    """Root object of an exported SavedModel; see the module docstring for the contract."""

    def __init__(self, facts: ModelFacts, kind: str = CLASSIFIER, frozen_batchnorm: bool = False):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
        if kind == CLASSIFIER and facts.classifier is None:
            raise ValueError(
                f"Model {facts.model.name!r} has no classifier head (built with include_top=False); "
                "export it with kind='backbone' (CLI: --backbone)"
            )
        network = facts.classifier if kind == CLASSIFIER else facts.levels
        model = facts.model
        height, width = facts.input_size

        # Keras 3 variables wrap tf.Variables under the TensorFlow backend; the traced
        # functions capture the wrapped ones, so those are what the lists must hold.
        self.variables = [_tf_variable(v) for v in model.variables]
        self.trainable_variables = [_tf_variable(v) for v in model.trainable_variables]

        # Regularisers live on the Keras variables; one function returns their sum.
        regularized = [(v, v.regularizer) for v in model.trainable_variables if getattr(v, "regularizer", None)]
        self.regularization_losses = []
        if regularized:

            @tf.function(input_signature=[], autograph=False)
            def regularization_loss():
                return tf.add_n([tf.cast(reg(v), tf.float32) for v, reg in regularized])

            regularization_loss.get_concrete_function()
            self.regularization_losses = [regularization_loss]

        def call(images, training=False):
            if not isinstance(training, bool):
                raise ValueError(f"`training` must be a Python bool. Received: {training!r}")
            # [0, 1] -> the network's input; per-image whitening does not depend on the pixel scale.
            inputs = (tf.image.per_image_standardization(images) if facts.preprocessing == "standardize"
                      else images * 2.0 - 1.0)
            with _moving_statistics(network) if training and frozen_batchnorm else contextlib.nullcontext():
                outputs = network(inputs, training=training)
            if isinstance(outputs, dict):
                return {key: tf.cast(value, tf.float32) for key, value in outputs.items()}
            return tf.cast(outputs, tf.float32)

        traced = tf.function(call, autograph=False)
        spec = tf.TensorSpec((None, height, width, facts.channels), tf.float32, name="images")
        for training in (False, True):
            traced.get_concrete_function(spec, training=training)
        self.__call__ = traced


@contextlib.contextmanager
def _moving_statistics(network):
    """While tracing, make every BatchNorm layer normalise with its moving statistics.

    Keras' BatchNormalization uses batch statistics only when `training and self.trainable`;
    clearing the layers' own flag (not their variables': the `trainable_variables` list was
    taken before, and the tf.Variables keep `trainable=True`) gives frozen statistics with
    gradients still flowing to gamma and beta.
    """
    from nasnet_keras.layer_tree import walk

    layers = [layer for layer in walk(network) if isinstance(layer, keras.layers.BatchNormalization)]
    flags = [layer.trainable for layer in layers]
    try:
        for layer in layers:
            layer.trainable = False
        yield
    finally:
        for layer, flag in zip(layers, flags):
            layer.trainable = flag


def _tf_variable(variable):
    value = getattr(variable, "value", variable)
    if not isinstance(value, tf.Variable):
        raise ValueError(
            "The reusable SavedModel needs the TensorFlow backend (Keras variables backed by tf.Variable). "
            f"Received a variable of type {type(value).__name__}; set KERAS_BACKEND=tensorflow"
        )
    return value
