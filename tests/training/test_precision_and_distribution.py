"""--mixed-precision and --strategy mirrored: what the trainer builds under them, and that EMA/checkpoints follow."""

import keras
import numpy as np
import tensorflow as tf

from nasnet_keras.training import ImageNetRecipe, RunDirectory, compile_for_recipe
from nasnet_keras.training import averaged_weights as ema
from nasnet_keras.training.distribution import make_distribution
from nasnet_keras.training.trainer import dtype_policy
from training_helpers import batch, two_head_model


def build(mixed: bool):
    with dtype_policy(mixed):
        model = two_head_model()
        compile_for_recipe(model, ImageNetRecipe(ema_momentum=0.5, base_learning_rate=0.1), 5, jit_compile=False)
    return model


def numpy(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def test_mixed_precision_computes_in_float16_with_loss_scaling_and_checkpoints_it(tmp_path):
    model = build(mixed=True)
    assert keras.mixed_precision.global_policy().name == "float32"  # the caller's policy is left alone
    hidden = model.get_layer("hidden")
    assert hidden.compute_dtype == "float16" and hidden.kernel.dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert ema.ema_optimizer(model) is model.optimizer.inner_optimizer
    x, y = batch(16)
    history = model.fit(x, {"predictions": y, "aux_predictions": y}, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # Steps whose scaled gradients overflow are skipped, so the count of applied updates
    # (what schedules and checkpoints follow) may trail the batches seen.
    step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    assert 0 <= step <= 2
    run = RunDirectory(tmp_path)
    run.save(model, step)
    fresh = build(mixed=True)
    assert run.restore(fresh) == step
    names = [v.path.split("/")[-1] for v in model.optimizer.variables]
    assert "dynamic_scale" in names and any(n.endswith("_average") for n in names)
    for ours, theirs in zip(numpy(fresh.optimizer.variables), numpy(model.optimizer.variables)):
        np.testing.assert_array_equal(ours, theirs)


def test_mirrored_strategy_replicates_and_keeps_ema_evaluation():
    strategy = make_distribution("mirrored", 8, environ={}).strategy  # one replica on a CPU-only machine
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    with strategy.scope():
        model = build(mixed=False)
    assert model.distribute_strategy is strategy
    x, y = batch(16)
    targets = {"predictions": y, "aux_predictions": y}
    model.fit(x, targets, batch_size=8, epochs=1, validation_data=(x, targets),
              callbacks=ema.evaluation_callbacks(model), verbose=0)
    for weight, average in zip(numpy(model.trainable_variables), numpy(ema.averaged_variables(model))):
        np.testing.assert_allclose(weight, average, atol=1e-6)
