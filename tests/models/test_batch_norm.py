"""The fused BatchNorm against Keras' own, as numbers: outputs, gradients, moving statistics.

`nasnet_keras.batch_norm.FusedBatchNormalization` must compute what
`keras.layers.BatchNormalization` computes (same variables, names, momentum and epsilon
semantics) so that weight files and keras.applications parity hold; these tests compare
the two layer by layer (whole models: tests/models/test_kernels.py).
"""


import keras
import numpy as np
import pytest
import tensorflow as tf

from nasnet_keras.batch_norm import FusedBatchNormalization, batch_norm_layer
from nasnet_keras.kernels import keras_kernels


def _pair(shape, seed=0, **kwargs):
    """A Keras BN and a fused BN with the same random (non-trivial) weights."""
    reference, fused = keras.layers.BatchNormalization(**kwargs), FusedBatchNormalization(**kwargs)
    reference.build(shape)
    fused.build(shape)
    rng = np.random.default_rng(seed)
    gamma, beta, mean, var = reference.get_weights()
    reference.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                           rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
    fused.set_weights(reference.get_weights())
    return reference, fused


def _run(layer, x, training):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.sin(y))  # a non-linear loss: every gradient term matters
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    return y.numpy(), [g.numpy() for g in grads], [w.copy() for w in layer.get_weights()]


@pytest.mark.parametrize("momentum, epsilon", [(0.9997, 1e-3), (0.9, 1e-5), (0.5, 1e-3)])
@pytest.mark.parametrize("training", [False, True])
def test_layer_matches_keras(momentum, epsilon, training):
    x = tf.constant(np.random.default_rng(1).normal(1.0, 2.0, (4, 5, 6, 8)).astype("float32"))
    reference, fused = _pair(x.shape, momentum=momentum, epsilon=epsilon)
    assert fused.can_fuse(x)
    before = fused.get_weights()
    y_ref, g_ref, w_ref = _run(reference, x, training)
    y, g, w = _run(fused, x, training)
    np.testing.assert_allclose(y, y_ref, atol=1e-5, rtol=0)
    for ours, theirs in zip(g, g_ref):
        np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=1e-4)
    for ours, theirs in zip(w, w_ref):  # moving statistics after one step: biased variance, as Keras
        np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)
    moved = [np.abs(a - b).max() for a, b in zip(w[2:], before[2:])]
    assert (min(moved) > 0) == training  # the step did update them (or left them alone)


def test_dynamic_batch_size_uses_the_run_time_count():
    """With an unknown batch size the Bessel factor comes from the run-time shape."""
    reference, fused = _pair((None, 3, 3, 4), momentum=0.5)
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 3, 3, 4)).astype("float32"))
    step = tf.function(lambda v: fused(v, training=True), input_signature=[tf.TensorSpec((None, 3, 3, 4))])
    np.testing.assert_allclose(step(x).numpy(), reference(x, training=True).numpy(), atol=1e-5)
    for ours, theirs in zip(fused.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize("case", ["mask", "axis_1", "rank_2", "renorm", "small_epsilon", "no_scale_center"])
def test_falls_back_to_keras_where_the_kernel_differs(case):
    shape, kwargs, mask = (3, 4, 4, 6), {}, None
    if case == "axis_1":
        kwargs = {"axis": 1}
    elif case == "rank_2":
        shape = (5, 6)
    elif case == "renorm":
        kwargs = {"renorm": True}
    elif case == "small_epsilon":
        kwargs = {"epsilon": 1e-6}
    elif case == "no_scale_center":
        kwargs = {"scale": False, "center": False}
    reference, fused = keras.layers.BatchNormalization(**kwargs), FusedBatchNormalization(**kwargs)
    x = tf.constant(np.random.default_rng(3).normal(size=shape).astype("float32"))
    if case == "mask":
        mask = tf.constant(np.random.default_rng(4).uniform(size=shape[:-1]) > 0.3)
    reference.build(shape)
    fused.build(shape)
    fused.set_weights(reference.get_weights())
    # Without scale/center the kernel still runs (with ones/zeros); the rest take Keras' path.
    assert fused.can_fuse(x, mask) == (case == "no_scale_center")
    np.testing.assert_allclose(fused(x, training=True, mask=mask).numpy(),
                               reference(x, training=True, mask=mask).numpy(), atol=1e-5)
    for ours, theirs in zip(fused.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_mixed_float16_takes_float16_and_keeps_float32_statistics():
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        reference, fused = _pair((4, 5, 6, 8), momentum=0.5)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    x = tf.constant(np.random.default_rng(5).normal(1.0, 2.0, (4, 5, 6, 8)).astype("float16"))
    for training in (True, False):
        y_ref, y = reference(x, training=training), fused(x, training=training)
        assert y.dtype == y_ref.dtype == tf.float16
        np.testing.assert_allclose(y.numpy().astype("float32"), y_ref.numpy().astype("float32"), atol=1e-2)
    assert fused.moving_variance.dtype == "float32"
    for ours, theirs in zip(fused.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_same_variables_and_config_as_keras_and_files_load_both_ways(tmp_path):
    reference, fused = _pair((2, 3, 3, 4), momentum=0.99, epsilon=1e-4)
    assert [w.path.split("/")[-1] for w in fused.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    config, ref_config = fused.get_config(), reference.get_config()
    config.pop("name"), ref_config.pop("name")
    assert config == ref_config
    # A Keras BN's weight file loads into the fused layer, and the other way round.
    keras_file, fused_file = str(tmp_path / "keras.weights.h5"), str(tmp_path / "fused.weights.h5")
    keras.Sequential([keras.Input((3, 3, 4)), reference]).save_weights(keras_file)
    target = keras.Sequential([keras.Input((3, 3, 4)), FusedBatchNormalization()])
    target.load_weights(keras_file)
    for ours, theirs in zip(target.layers[0].get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    target.save_weights(fused_file)
    back = keras.Sequential([keras.Input((3, 3, 4)), keras.layers.BatchNormalization()])
    back.load_weights(fused_file)
    for ours, theirs in zip(back.layers[0].get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(ours, theirs)


def test_keras_kernels_builds_the_old_layers():
    assert type(batch_norm_layer(name="a")) is FusedBatchNormalization
    with keras_kernels():
        assert type(batch_norm_layer(name="b")) is keras.layers.BatchNormalization
    assert type(batch_norm_layer(name="c")) is FusedBatchNormalization
