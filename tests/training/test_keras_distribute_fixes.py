"""The Keras internals `keras_distribute_fixes` replaces still exist as checked (keras 3.15.1),
and the fixes do what they say under a real (one-replica) MirroredStrategy; the
two-replica comparisons with one device are in test_two_replicas.py."""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from nasnet_keras.training import keras_distribute_fixes as fixes
from training_helpers import batch, two_head_model


def test_the_replaced_keras_internals_are_still_there():
    from keras.src.backend.tensorflow import optimizer as tf_optimizer
    from keras.src.backend.tensorflow import trainer as tf_trainer

    assert keras.__version__.startswith("3."), keras.__version__
    message = "Keras changed the internals nasnet_keras.training.keras_distribute_fixes replaces; re-check them"
    for owner, name in ((tf_trainer.TensorFlowTrainer, "_maybe_symbolic_build"), (keras.Model, "_symbolic_build"),
                        (tf_trainer, "reduce_per_replica"), (tf_trainer, "_collective_all_reduce_multi_worker"),
                        (tf_optimizer.TFOptimizer, "_backend_update_step"),
                        (tf_optimizer.TFOptimizer, "_all_reduce_sum_gradients"),
                        (tf_optimizer.TFOptimizer, "_distributed_tf_update_step"),
                        (keras.optimizers.Optimizer, "_clip_gradients"),
                        (keras.layers.BatchNormalization, "_moments")):
        assert hasattr(owner, name), f"{message}: {owner.__name__}.{name} is gone"
    # The two behaviours being fixed, as they read in keras 3.15.1:
    assert 'strategy.reduce("MEAN", v, axis=0)' in inspect.getsource(tf_trainer.reduce_per_replica), message
    assert '"MEAN"' in inspect.getsource(tf_trainer.TensorFlowTrainer._maybe_symbolic_build), message
    source = inspect.getsource(keras.optimizers.Optimizer.apply) + inspect.getsource(
        keras.src.optimizers.base_optimizer.BaseOptimizer._backend_apply_gradients)
    assert "self._clip_gradients(grads)" in source, message
    from keras.src.backend.tensorflow import nn as tf_nn

    assert "y_squared_mean - tf.square(mean)" in inspect.getsource(tf_nn._compute_moments_sync), message
    layer = keras.layers.BatchNormalization()
    layer.build((None, 3, 3, 2))
    assert list(layer._reduction_axes) == [0, 1, 2], message  # what the two-pass moments reduce over


def test_fixed_models_train_under_a_strategy_and_clip_the_reduced_gradient():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    x, y = batch(16)
    targets = {"predictions": y, "aux_predictions": y}
    trained = []
    for fixed in (False, True):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = two_head_model()
            model.compile(optimizer=keras.optimizers.SGD(0.5, global_clipnorm=1e-3),
                          loss="categorical_crossentropy", jit_compile=False)
            if fixed:
                fixes.build_without_a_batch(model)
                assert fixes.clip_after_all_reduce(model.optimizer)
        data = tf.data.Dataset.from_tensor_slices((x, targets)).batch(8)
        model.fit(data, epochs=1, verbose=0, shuffle=False)
        trained.append(model.get_weights())
    # One replica: clipping before or after the (trivial) all-reduce is the same computation
    # (two replicas against one device: test_two_replicas.py).
    for ours, theirs in zip(*trained):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert not fixes.clip_after_all_reduce(keras.optimizers.SGD(0.1))  # nothing to clip: left alone


def test_the_log_reduction_fix_is_installed_once():
    from keras.src.backend.tensorflow import trainer as tf_trainer

    fixes.fix_multi_worker_log_reduction()
    installed = tf_trainer.reduce_per_replica
    fixes.fix_multi_worker_log_reduction()
    assert tf_trainer.reduce_per_replica is installed and getattr(installed, fixes.FIXED_MARK)
    # Outside MultiWorkerMirroredStrategy it defers to Keras.
    assert float(installed(tf.constant(2.0), tf.distribute.get_strategy(), "auto")) == pytest.approx(2.0)
