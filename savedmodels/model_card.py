"""The model card: a JSON file beside `saved_model.pb` saying what the SavedModel is.

A SavedModel holds graphs and weights but not the facts a user needs to trust or reuse
it: which architecture (genotype and variant), what input size and preprocessing, how
big (parameters, Mult-Adds), which classes the indices mean, and whether the weights are
the optimizer's moving averages. TF Serving ignores extra files in a version directory,
so the card travels with the model it describes.
"""

from __future__ import annotations

import json
import os
import platform

import keras
import tensorflow as tf

from nasnet_keras.fileio import write_json
from nasnet_keras.profiling import profile
from savedmodels import signatures as sigs

FILENAME = "model_card.json"
FORMAT_VERSION = 1


def build(
    facts,
    kind: str,
    signature_specs: dict,
    *,
    variant: str | None,
    class_names: list[str] | None,
    top_k: int,
    weights: str,
    source: str | None,
) -> dict:
    """The card's content; every field is plain JSON."""
    from nasnet_keras import __version__

    height, width = facts.input_size
    params, mult_adds = _cost(facts.model)
    genotype = facts.genotype
    color = "RGB" if facts.channels == 3 else "grayscale"
    card = {
        "format_version": FORMAT_VERSION,
        "name": facts.model.name,
        "kind": kind,
        "variant": variant,
        "source": source,
        "genotype": None if genotype is None else genotype.to_dict(),
        "input_size": [height, width, facts.channels],
        "preprocessing": {
            sigs.DEFAULT: f"float32 {color} pixels 0..255; " + (
                "standardized per image in the graph ((x - mean) / std)" if facts.preprocessing == "standardize"
                else "scaled in the graph to x / 127.5 - 1"),
            sigs.BYTES: f"encoded JPEG/PNG/GIF/BMP/WebP strings; decoded to {color} and resized to "
            f"{height}x{width} (bilinear, aspect ratio not kept) in the graph, then as {sigs.DEFAULT}",
            sigs.FEATURES: f"as {sigs.DEFAULT}",
            "__call__": f"float32 {color} in [0, 1] (TF Hub image convention); " + (
                "standardized per image in the graph" if facts.preprocessing == "standardize"
                else "scaled in the graph to 2x - 1"),
        },
        "input_preprocessing": facts.preprocessing,
        "params": params,
        "mult_adds": mult_adds,
        "classes": facts.num_classes,
        "class_names": class_names,
        "top_k": min(top_k, facts.num_classes) if facts.num_classes else None,
        "classifier_activation": facts.classifier_activation,
        "feature_levels": list(facts.level_keys),
        "call_output": "classifier output" if kind == "classifier" else "dict of feature maps by level",
        "weights": weights,
        "signatures": signature_specs,
        "versions": {
            "nasnet_keras": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
    }
    return card


def _cost(model) -> tuple[int, int]:
    """Parameters and Mult-Adds (`nasnet_keras.profiling`)."""
    result = profile(model)
    return int(result.params), int(result.mult_adds)


def write(card: dict, directory: str) -> str:
    path = os.path.join(directory, FILENAME)
    write_json(path, card)
    return path


def read(directory: str) -> dict:
    """The card of an exported version directory."""
    path = os.path.join(os.fspath(directory), FILENAME)
    if not os.path.exists(path):
        raise ValueError(f"No model card at {path}: is {directory!r} a version directory written by `nasnet export`?")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_class_names(path: str) -> list[str]:
    """Class names from a JSON list or a text file with one name per line."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"Class-names file not found: {path!r} (expected a JSON list or one name per line)")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        try:
            names = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not a JSON list of class names: {error}") from None
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path}: class names must be strings. Received: {names[:5]!r}...")
    return names
