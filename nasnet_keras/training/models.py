"""Which network a run trains: a named variant or a genotype on a variant's skeleton, and fine-tuning.

`--model` is either a named variant (`nasnet_keras.variants`: mobile, large, cifar_6@768,
...) or a genotype (a registered name, a JSON file or JSON text, as `as_genotype`
accepts), which is stacked on the skeleton and size of `base_variant`. The variant
table supplies the model-side regularisation TF-slim trained it with; the recipe may
override it (see `Recipe.model_overrides`).

Fine-tuning starts from weights trained on another task: "imagenet" (keras.applications'
files), a keras.applications-style legacy .h5 file, or a `.keras` model (e.g. another
run's `final.keras`). The source network is built with *its* classes, loaded strictly,
and every layer is copied by name into the new network except the classifiers
(`predictions`, the auxiliary head), which start fresh for the new number of classes.
Any other layer that is missing or shaped differently means the weights belong to
another architecture, which is an error rather than a silent partial load.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import keras

from nasnet_keras import variants
from nasnet_keras.checks import check_int
from nasnet_keras.genotype import NASNET_A
from nasnet_keras.genotype import Genotype, as_genotype
from nasnet_keras.keras_weights import is_legacy_h5, read_legacy_h5, weighted_leaf_layers

# Architecture overrides a run may apply to its variant (tiny proxies, other widths).
ARCHITECTURE_OVERRIDES = ("num_blocks", "filters", "penultimate_filters")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A network to train: the variant that gives skeleton and size, the cells, size overrides."""

    variant: str
    genotype: Genotype
    overrides: dict[str, int] = dataclasses.field(default_factory=dict)

    def describe(self) -> str:
        name = f"{self.genotype.name} " if self.genotype.name else ""
        extra = "".join(f", {k}={v}" for k, v in sorted(self.overrides.items()))
        return f"variant {self.variant!r} (genotype {name}[{self.genotype.id}]{extra})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "genotype_id": self.genotype.id,
            "genotype_name": self.genotype.name,
            "overrides": dict(sorted(self.overrides.items())),
        }


def resolve_model(model: str | Genotype, base_variant: str, **overrides) -> ModelSpec:
    """`model` as a variant name, else as a genotype on `base_variant`'s skeleton."""
    if isinstance(model, str) and model in variants.VARIANTS:
        variant, genotype = model, NASNET_A
    else:
        try:
            genotype = as_genotype(model)
        except ValueError as error:
            raise ValueError(
                f"--model {model!r} is neither a named variant ({', '.join(variants.VARIANTS)}) nor a genotype: "
                f"{error}"
            ) from None
        variant = base_variant
    skeleton = variants.get(variant).skeleton  # unknown base variants raise here
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(ARCHITECTURE_OVERRIDES))
    if unknown:
        raise ValueError(f"Unknown architecture override(s) {unknown}. Accepted: {', '.join(ARCHITECTURE_OVERRIDES)}")
    if "filters" in overrides and skeleton != "cifar":
        raise ValueError(
            f"`filters` sizes the CIFAR skeleton; variant {variant!r} is an ImageNet model: "
            "use `penultimate_filters` instead"
        )
    for key, value in overrides.items():
        check_int(key, value, minimum=1)
    return ModelSpec(variant, genotype, overrides)


def build_model(spec: ModelSpec, input_shape, classes: int, model_kwargs: dict[str, Any]) -> keras.Model:
    """Build `spec` for `input_shape` / `classes` with the recipe's regularisation `model_kwargs`."""
    kwargs = dict(model_kwargs)
    kwargs.update(spec.overrides, input_shape=tuple(input_shape), classes=classes, genotype=spec.genotype)
    try:
        return variants.build(spec.variant, **kwargs)
    except ValueError as error:
        height, width, channels = input_shape
        raise ValueError(
            f"Cannot build {spec.describe()} for {height}x{width}x{channels} images and {classes} classes: {error}"
        ) from None


# --- fine-tuning -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SourceWeights:
    """What a weights source was trained for: enough to rebuild its network before loading."""

    kind: str  # "imagenet" | "legacy_h5" | "keras"
    path: str | None
    classes: int | None  # None: no classifier in the file
    channels: int
    model: Any = dataclasses.field(default=None, compare=False, repr=False)  # a loaded .keras model


def inspect_weights(weights: str) -> SourceWeights:
    """Identify a fine-tuning source; any other kind of file is refused with what is accepted."""
    if weights == "imagenet":
        return SourceWeights("imagenet", None, 1000, 3)
    path = os.fspath(weights)
    accepted = ("Accepted: 'imagenet', a keras.applications-style legacy .h5 weights file, or a .keras model "
                "(e.g. a run's final.keras)")
    if not os.path.exists(path):
        raise ValueError(f"Weights file {path!r} does not exist. {accepted}")
    if path.endswith(".keras"):
        from nasnet_keras.model_files import load_keras_model

        model = load_keras_model(path, compile=False)
        predictions = _find_layer(model, "predictions")
        classes = predictions.units if predictions is not None else None
        return SourceWeights("keras", path, classes, model.input_shape[-1], model)
    if path.endswith(".h5") and not path.endswith(".weights.h5"):
        from nasnet_keras.model_files import weights_genotype_id

        weights_genotype_id(path)  # a truncated or foreign file is refused here, by name
    if path.endswith(".h5") and is_legacy_h5(path):
        arrays = read_legacy_h5(path)
        if "stem_conv1" not in arrays:
            raise ValueError(f"{path} is not a NASNet weights file (it has no 'stem_conv1' layer). {accepted}")
        classes = arrays["predictions"][0].shape[-1] if "predictions" in arrays else None
        return SourceWeights("legacy_h5", path, classes, arrays["stem_conv1"][0].shape[2])
    raise ValueError(
        f"Cannot fine-tune from {path!r}: a Keras .weights.h5 file stores no architecture, so its classes "
        f"cannot be known. {accepted}"
    )


def _find_layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def load_source_model(source: SourceWeights, spec: ModelSpec, input_shape, model_kwargs) -> keras.Model:
    """The network the source weights belong to, with them loaded (strictly)."""
    if source.kind == "keras":
        return source.model
    variant = variants.get(spec.variant)
    kwargs = {k: v for k, v in model_kwargs.items() if k.startswith("bn_")}
    kwargs.update(spec.overrides, genotype=spec.genotype, aux_head=False)
    if source.kind == "imagenet":
        if spec.genotype.id != NASNET_A.id or spec.overrides:
            raise ValueError(
                f"weights='imagenet' exist only for NASNet-A mobile and large as published; received "
                f"{spec.describe()}"
            )
        kwargs.update(weights="imagenet", classes=1000,
                      input_shape=(variant.image_size, variant.image_size, 3))
    else:
        shape = (input_shape[0], input_shape[1], source.channels)
        kwargs.update(weights=source.path, input_shape=shape,
                      classes=source.classes or 1000, include_top=source.classes is not None)
    try:
        return variants.build(spec.variant, **kwargs)
    except ValueError as error:
        raise ValueError(f"The weights {source.path or 'imagenet'} do not fit {spec.describe()}: {error}") from None


def _is_classifier(name: str) -> bool:
    return name == "predictions" or name.startswith("aux_")


def transfer_weights(source: keras.Model, target: keras.Model) -> int:
    """Copy every weighted layer by name from `source` to `target`, classifiers excepted.

    Returns the number of layers copied. Classifier layers (the top and the auxiliary head)
    are copied only when their shapes agree (same classes); every other layer must exist
    in both with the same shapes.
    """
    theirs = weighted_leaf_layers(source)
    ours = weighted_leaf_layers(target)
    problems, copied = [], 0
    for name, layer in ours.items():
        other = theirs.get(name)
        same = other is not None and [w.shape for w in other.weights] == [w.shape for w in layer.weights]
        if same:
            layer.set_weights(other.get_weights())
            copied += 1
        elif not _is_classifier(name):
            problems.append(name if other is None else
                            f"{name} (shapes {[tuple(w.shape) for w in other.weights]} vs "
                            f"{[tuple(w.shape) for w in layer.weights]})")
    if problems:
        raise ValueError(
            f"The source weights ({source.name}) come from another architecture than the model "
            f"({target.name}): {len(problems)} layers have no counterpart of the same shape, e.g. {problems[:3]}"
        )
    return copied
