"""Exporting the optimizer's exponential moving averages (EMA) instead of the raw weights.

A Keras optimizer built with `use_ema=True` keeps one average per trainable variable.
`model.fit` copies them into the model when it returns (so a finished run's
`final.keras` already holds them, and swapping them in again changes nothing), but a
model saved during training (a `.keras` checkpoint, a custom loop) still holds the raw
weights, with the averages only in its optimizer. Exporting the averages is what the
training meant, so the exporter swaps them in for the duration of the save and puts the
raw weights back.
BatchNorm moving statistics are not averaged by the optimizer and are exported as they are.
"""

from __future__ import annotations

import contextlib

from nasnet_keras.training.averaged_weights import ema_optimizer

MODES = ("auto", True, False)


def moving_averages(model) -> list | None:
    """[(model variable, its average)] from the model's optimizer, or None when there are none.

    None when the model has no optimizer, the optimizer does not use EMA, or it never
    took a step (its averages would still be the initial zeros).
    """
    optimizer = ema_optimizer(model)
    if optimizer is None or not getattr(optimizer, "built", True):
        return None
    # The attribute Keras' own SwapEMAWeights callback reads; there is no public accessor.
    averages = getattr(optimizer, "_model_variables_moving_average", None)
    if not averages or int(optimizer.iterations.numpy()) == 0:
        return None
    indices = getattr(optimizer, "_trainable_variables_indices", {})
    pairs = []
    for variable in model.trainable_variables:
        key = optimizer._var_key(variable) if hasattr(optimizer, "_var_key") else id(variable)
        if key not in indices:
            raise ValueError(
                f"The optimizer has moving averages but none for variable {variable.path!r}; it was built "
                "for other variables. Export with ema=False (CLI: --ema no) to use the raw weights"
            )
        average = averages[indices[key]]
        if average is not None:
            pairs.append((variable, average))
    return pairs


def resolve(model, mode) -> list | None:
    """The averages to export for `mode` ("auto": when present; True: required; False: never)."""
    if mode not in MODES:
        raise ValueError(f"`ema` must be one of 'auto', True, False. Received: ema={mode!r}")
    if mode is False:
        return None
    pairs = moving_averages(model)
    if mode is True and pairs is None:
        raise ValueError(
            "ema=True but the model has no optimizer moving averages (compile with an optimizer "
            "built with use_ema=True and train at least one step, or load the .keras file with its optimizer)"
        )
    return pairs


@contextlib.contextmanager
def swapped_in(pairs):
    """Assign the averages to their variables, and restore the raw values on exit (even on error)."""
    if not pairs:
        yield
        return
    raw = [variable.numpy() for variable, _ in pairs]
    try:
        for variable, average in pairs:
            variable.assign(average)
        yield
    finally:
        for (variable, _), value in zip(pairs, raw):
            variable.assign(value)
