"""Loading keras.applications' NASNet weight files into our cell-based models.

Keras publishes NASNet weights as legacy (Keras 2) HDF5 files: a root attribute
`layer_names` and, per layer, a group whose `weight_names` attribute lists its arrays in
order. Keras' own loader matches layers by *position*, which only works for a model
made of exactly the same flat layers. Our cells are composite layers, so we match by
*name*: every weighted sub-layer of our cells carries keras.applications' layer name
(see `nasnet_keras.ops` and `nasnet_keras.cells`), and the mapping is checked strictly
in both directions, so a wrong or truncated file fails loudly instead of half-loading.
"""

from __future__ import annotations

import re

import numpy as np

from nasnet_keras.drop_path import ScheduledDropPath
from nasnet_keras.layer_tree import children, walk

# keras.applications names block 5's left op of the Reduction cell "reduction_left4"
# (a copy-paste quirk kept for weight compatibility); in our generic naming it is left5.
_KERAS_TO_OURS = [(re.compile(r"^(separable_conv_\d(?:_bn)?_reduction_)left4_"), r"\1left5_")]


def is_legacy_h5(path: str) -> bool:
    """True for a Keras-2 style HDF5 weights (or whole-model) file."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            return "layer_names" in group.attrs
    except OSError:
        return False


def read_legacy_h5(path: str) -> dict[str, list[np.ndarray]]:
    """{layer name: [arrays in Keras order]} for every layer that has weights."""
    import h5py

    def text(value):
        return value.decode("utf8") if isinstance(value, bytes) else str(value)

    weights = {}
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        for layer_name in map(text, group.attrs["layer_names"]):
            layer_group = group[layer_name]
            names = [text(n) for n in layer_group.attrs.get("weight_names", [])]
            if names:
                weights[layer_name] = [np.asarray(layer_group[n]) for n in names]
    return weights


def weighted_leaf_layers(model) -> dict[str, object]:
    """Our model's layers that own weights and have no sub-layers, by name."""
    found: dict[str, object] = {}
    for layer in (nested for top in model.layers for nested in walk(top)):
        if not children(layer) and layer.weights and not isinstance(layer, ScheduledDropPath):
            if layer.name in found and found[layer.name] is not layer:
                raise ValueError(f"Two weighted layers are both named {layer.name!r}; cannot map weights by name")
            found[layer.name] = layer
    return found


def _our_name(keras_name: str) -> str:
    for pattern, replacement in _KERAS_TO_OURS:
        keras_name = pattern.sub(replacement, keras_name)
    return keras_name


def load_keras_nasnet_weights(model, path: str) -> None:
    """Load a keras.applications NASNet legacy-h5 weight file into `model` (strict)."""
    file_weights = {_our_name(name): arrays for name, arrays in read_legacy_h5(path).items()}
    ours = weighted_leaf_layers(model)
    missing = sorted(set(ours) - set(file_weights))
    unexpected = sorted(set(file_weights) - set(ours))
    if missing or unexpected:
        hint = ""
        if "predictions" in unexpected:
            hint = " The file has a classifier ('predictions'): build with include_top=True or use the no-top file."
        elif "predictions" in missing:
            hint = " The model has a classifier but the file has none: use the file with top, or include_top=False."
        raise ValueError(
            f"The weight file {path} does not match the model {model.name!r}: "
            f"{len(missing)} model layers have no weights in the file (e.g. {missing[:3]}), "
            f"{len(unexpected)} file layers have no counterpart in the model (e.g. {unexpected[:3]}). "
            "Check the architecture (penultimate_filters, num_blocks, genotype) against the file's." + hint
        )
    for name, layer in ours.items():
        arrays = file_weights[name]
        expected = [tuple(w.shape) for w in layer.weights]
        received = [tuple(a.shape) for a in arrays]
        if expected != received:
            raise ValueError(
                f"Layer {name!r}: weight shapes in {path} are {received}, the model expects {expected}. "
                "Check `classes`, `penultimate_filters` and `num_blocks`."
            )
        layer.set_weights(arrays)
