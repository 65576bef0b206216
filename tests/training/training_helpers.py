"""Small models and files shared by the training tests (no NASNet where the recipe logic suffices)."""

from __future__ import annotations

import hashlib
import os

import keras
import numpy as np


def two_head_model(inputs: int = 6, classes: int = 4, aux: bool = True) -> keras.Model:
    """A two-output classifier with the output names of a NASNet with its auxiliary head."""
    x = keras.Input((inputs,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    outputs = [keras.layers.Dense(classes, activation="softmax", name="predictions")(hidden)]
    if aux:
        outputs.append(keras.layers.Dense(classes, activation="softmax", name="aux_predictions")(hidden))
    return keras.Model(x, outputs if aux else outputs[0])


def batch(n: int = 16, inputs: int = 6, classes: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, inputs)).astype("float32")
    y = np.eye(classes, dtype="float32")[rng.integers(0, classes, n)]
    return x, y


def snapshot(directory: str) -> dict[str, str]:
    """{relative path: sha256} of every file under `directory` (to prove nothing changed)."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return found
