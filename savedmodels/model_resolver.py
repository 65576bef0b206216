"""Turning `nasnet export --model ...` into a Keras model: a variant, a .keras file, or a genotype.

Three things name a trained NASNet in this project, and each needs something different:

* a variant name ("mobile", "cifar_6@768", ...): built by `nasnet_keras.variants.build`,
  weights from `--weights` (random without it: useful for trying out serving only);
* a `.keras` file: reloaded whole, with its optimizer, so EMA averages can be exported;
* a genotype JSON (a searched architecture): built into the skeleton of `--variant`,
  weights from `--weights` (required: a searched cell with random weights serves no one).
"""

from __future__ import annotations

import os


def load(model: str, *, weights: str | None = None, variant: str | None = None, overrides: dict | None = None):
    """Resolve `model` (variant name, .keras path or genotype .json path) to (keras.Model, variant name)."""
    from nasnet_keras import variants  # (importing nasnet_keras registers the layers .keras files refer to)

    overrides = dict(overrides or {})
    if weights is not None and not os.path.exists(weights):
        raise ValueError(f"Weights file not found: {weights!r}")
    path = os.fspath(model)
    if path.endswith(".keras"):
        if not os.path.exists(path):
            raise ValueError(f"Model file not found: {path!r}")
        if overrides:
            raise ValueError(f"Overrides {sorted(overrides)} apply to variants and genotypes, not to a .keras file")
        from nasnet_keras.model_files import load_keras_model

        loaded = load_keras_model(path)
        if weights is not None:
            _load_weights(loaded, weights)
        return loaded, variant
    if path.endswith(".json"):
        if not os.path.exists(path):
            raise ValueError(f"Genotype file not found: {path!r}")
        if variant is None or weights is None:
            raise ValueError(
                "A genotype JSON needs --variant (the skeleton to build it in, one of "
                f"{', '.join(variants.VARIANTS)}) and --weights (the trained weights). "
                f"Received: variant={variant!r}, weights={weights!r}"
            )
        from nasnet_keras.genotype import as_genotype

        built = variants.build(variant, genotype=as_genotype(path), **overrides)
        _load_weights(built, weights)
        return built, variant
    if path in variants.VARIANTS:
        if variant is not None and variant != path:
            raise ValueError(f"--model names variant {path!r} but --variant says {variant!r}")
        built = variants.build(path, **overrides)
        if weights is not None:
            _load_weights(built, weights)
        return built, path
    raise ValueError(
        f"--model {model!r} is neither a variant name ({', '.join(variants.VARIANTS)}), nor a .keras file, "
        "nor a genotype .json file"
    )


def _load_weights(model, weights):
    from nasnet_keras.applications import load_weights

    load_weights(model, weights)
