"""The moving average of weights (paper App. A.7: "running average of parameters ... 0.9999")
as the weights that are evaluated and exported.

Keras keeps the average inside the optimizer (`use_ema=True`, updated in the same train
step as the weights, distribution-aware, saved with the optimizer's variables, so a
checkpoint carries it). Keras then uses it in two places, which is what this module
relies on rather than re-implementing:

* `keras.callbacks.SwapEMAWeights` swaps the averages into the model for every
  evaluation during `fit` (and swaps the raw weights back before training resumes);
* at the end of `fit`, `optimizer.finalize_variable_values` overwrites the model's
  weights with the averages, so what is evaluated and saved after training is the EMA.

A run that resumes into an already finished schedule performs no `fit`, so the trainer
calls `use_averaged_weights` itself; and between two `fit` calls of one run (a
mid-epoch resume), the raw weights come back from the checkpoint.
"""

from __future__ import annotations

import keras


def ema_optimizer(model: keras.Model):
    """The optimizer holding the averages (unwrapping mixed precision's LossScaleOptimizer), or None."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    return optimizer if getattr(optimizer, "use_ema", False) else None


def averaged_variables(model: keras.Model) -> list:
    """The optimizer's moving averages, in the order of `model.trainable_variables`."""
    optimizer = ema_optimizer(model)
    if optimizer is None or not optimizer.built:
        return []
    # The attribute Keras' own SwapEMAWeights reads; there is no public accessor.
    return list(optimizer._model_variables_moving_average)


def evaluation_callbacks(model: keras.Model) -> list[keras.callbacks.Callback]:
    """Callbacks that make evaluations inside `fit` see the averaged weights."""
    return [keras.callbacks.SwapEMAWeights()] if ema_optimizer(model) is not None else []


def use_averaged_weights(model: keras.Model) -> bool:
    """Overwrite the model's trainable weights with their averages (what `fit` does at its end)."""
    optimizer = ema_optimizer(model)
    if optimizer is None or not optimizer.built:
        return False
    optimizer.finalize_variable_values(model.trainable_variables)
    return True
