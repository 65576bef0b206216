"""The moving average of weights is what gets evaluated, during fit and after it."""

import keras
import numpy as np
import pytest

from nasnet_keras.training import ImageNetRecipe, compile_for_recipe
from nasnet_keras.training import averaged_weights as ema
from training_helpers import batch, two_head_model


def values(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def forward_loss(weights, x, y):
    """Cross-entropy of the one-hidden-layer model with the given weights (numpy, no Keras)."""
    kernel_1, bias_1, kernel_2, bias_2 = weights
    hidden = np.maximum(x @ kernel_1 + bias_1, 0)
    logits = hidden @ kernel_2 + bias_2
    logits -= logits.max(axis=-1, keepdims=True)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return float(np.mean(-np.sum(y * np.log(np.clip(p, 1e-7, 1)), axis=-1)))


class Probe(keras.callbacks.Callback):
    """Records raw weights and averages after each batch, and the model's weights around evaluation."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_train_batch_end(self, batch, logs=None):
        self.raw = values(self.model.trainable_variables)
        self.averages = values(ema.averaged_variables(self.model))

    def on_test_begin(self, logs=None):
        self.epochs.append({"raw": self.raw, "averages": self.averages,
                            "evaluated": values(self.model.trainable_variables)})

    def on_epoch_end(self, epoch, logs=None):
        self.epochs[-1].update(after=values(self.model.trainable_variables), val_loss=logs["val_loss"])


def test_ema_weights_differ_from_the_raw_ones_and_are_the_ones_evaluated():
    model = two_head_model(aux=False)
    recipe = ImageNetRecipe(ema_momentum=0.5, aux_loss_weight=0.0, label_smoothing=0.0, base_learning_rate=0.3,
                            clip_global_norm=None)
    compile_for_recipe(model, recipe, steps_per_epoch=5, jit_compile=False)
    x, y = batch(40)
    x_val, y_val = batch(16, seed=1)
    probe = Probe()
    callbacks = ema.evaluation_callbacks(model) + [probe]
    assert isinstance(callbacks[0], keras.callbacks.SwapEMAWeights)
    model.fit(x, y, batch_size=8, epochs=2, validation_data=(x_val, y_val), callbacks=callbacks, shuffle=False,
              verbose=0)
    assert len(probe.epochs) == 2
    for record in probe.epochs:
        # During validation the model holds the averages, not the raw weights ...
        for evaluated, average, raw in zip(record["evaluated"], record["averages"], record["raw"]):
            np.testing.assert_allclose(evaluated, average, atol=1e-6)  # Keras swaps by additions: float rounding
            assert np.abs(average - raw).max() > 1e-3
        # ... the validation loss is the loss of the averages ...
        assert record["val_loss"] == pytest.approx(forward_loss(record["averages"], x_val, y_val), rel=1e-4)
        assert record["val_loss"] != pytest.approx(forward_loss(record["raw"], x_val, y_val), rel=1e-3)
        # ... and training continues from the raw weights.
        for after, raw in zip(record["after"], record["raw"]):
            np.testing.assert_allclose(after, raw, atol=1e-6)  # Keras swaps by additions: float rounding
    # After fit the model holds the averages (what is evaluated and exported).
    final = values(model.trainable_variables)
    for weight, average, raw in zip(final, values(ema.averaged_variables(model)), probe.raw):
        np.testing.assert_allclose(weight, average, atol=1e-6)  # Keras swaps by additions: float rounding
        assert np.abs(weight - raw).max() > 1e-3
    loss = model.evaluate(x_val, y_val, return_dict=True, verbose=0)["loss"]
    assert loss == pytest.approx(forward_loss(final, x_val, y_val), rel=1e-4)


def test_no_ema_no_swap():
    model = two_head_model(aux=False)
    compile_for_recipe(model, ImageNetRecipe(ema_momentum=None, aux_loss_weight=0.0), 5, jit_compile=False)
    assert ema.ema_optimizer(model) is None and ema.evaluation_callbacks(model) == []
    assert ema.use_averaged_weights(model) is False and ema.averaged_variables(model) == []
