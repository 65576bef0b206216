"""Our SeparableConv2D equals Keras' in outputs and gradients, with its explicit-padding filter gradient."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nasnet_keras import separable_conv
from nasnet_keras.separable_conv import SeparableConv2D


def _pair(kernel, strides, padding, channels=6, filters=5, use_bias=False):
    ours = SeparableConv2D(filters, kernel, strides=strides, padding=padding, use_bias=use_bias)
    reference = keras.layers.SeparableConv2D(filters, kernel, strides=strides, padding=padding, use_bias=use_bias)
    shape = (None, 13, 11, channels)
    ours.build(shape)
    reference.build(shape)
    rng = np.random.default_rng(kernel * 10 + strides)
    weights = [rng.normal(size=w.shape).astype("float32") for w in reference.get_weights()]
    ours.set_weights(weights)
    reference.set_weights(weights)
    return ours, reference


def _output_and_gradients(layer, x, dy):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    return [y] + tape.gradient(y, [x] + layer.trainable_variables, output_gradients=dy)


@pytest.mark.parametrize("kernel,strides,padding", [(5, 1, "same"), (7, 1, "same"), (5, 2, "valid"),
                                                    (7, 2, "valid"), (5, 2, "same"), (3, 1, "same")])
def test_outputs_and_gradients_equal_keras(kernel, strides, padding):
    ours, reference = _pair(kernel, strides, padding, use_bias=True)
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 13, 11, 6)), tf.float32)
    assert ours.uses_explicit_filter_gradient(x) == (kernel >= separable_conv.MIN_KERNEL)
    y = reference(x)
    dy = tf.constant(np.random.default_rng(1).normal(size=y.shape), tf.float32)
    for got, want in zip(_output_and_gradients(ours, x, dy), _output_and_gradients(reference, x, dy)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


def test_the_filter_gradient_is_the_explicit_padding_op_only_where_it_applies():
    ours, _ = _pair(5, 1, "same")

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            y = ours(x)
        return tape.gradient(y, ours.trainable_variables)

    graph = step.get_concrete_function(tf.TensorSpec((2, 13, 11, 6), tf.float32)).graph
    filters = [op for op in graph.get_operations() if op.type == "DepthwiseConv2dNativeBackpropFilter"]
    assert [op.get_attr("padding") for op in filters] == [b"EXPLICIT"]
    assert list(filters[0].get_attr("explicit_paddings")) == [0, 0, 2, 2, 2, 2, 0, 0]
    unknown = step.get_concrete_function(tf.TensorSpec((2, None, None, 6), tf.float32)).graph  # Keras' own path
    assert {op.get_attr("padding") for op in unknown.get_operations()
            if op.type == "DepthwiseConv2dNativeBackpropFilter"} == {b"SAME"}


def test_same_padding_is_tensorflows():
    # TF 'SAME': out = ceil(in / stride); the extra pixel goes after.
    assert separable_conv._same_padding(13, 5, 1) == (2, 2)
    assert separable_conv._same_padding(13, 5, 2) == (2, 2)
    assert separable_conv._same_padding(12, 5, 2) == (1, 2)
    assert separable_conv._same_padding(12, 7, 2) == (2, 3)


def test_config_and_weights_are_keras_layers():
    ours, reference = _pair(5, 1, "same")
    assert {**ours.get_config(), "name": None} == {**reference.get_config(), "name": None}
    assert [w.path.split("/")[-1] for w in ours.weights] == [w.path.split("/")[-1] for w in reference.weights]
    restored = keras.layers.deserialize(keras.layers.serialize(ours))
    assert type(restored) is SeparableConv2D
