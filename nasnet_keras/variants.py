"""The paper's named NASNet-A models ("N @ F") in one table, with the paper's figures.

Each variant says how to build it (skeleton, N, F, input size, stem) and how the paper
/ TF-slim trained it (drop-path keep probability, dropout, weight decay, BatchNorm),
next to the published parameter count and Mult-Adds (Tables 1-2, reference.md §1-2).
`build(name, **overrides)` is the one constructor; `nasnet_keras.variants_cli.print_table()`
compares our accounting with the paper's (see docs/accounting.md for the figures that differ
and why). The "mobile" and "large" rows take their architecture from keras.applications'
configurations (`applications.MOBILE` / `applications.LARGE`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nasnet_keras.applications import LARGE, MOBILE, NASNet, NASNetCIFAR


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    label: str  # the paper's "N @ F" notation
    skeleton: str  # "imagenet" or "cifar"
    num_blocks: int
    penultimate_filters: int
    image_size: int
    classes: int
    stem_filters: int = 32  # ImageNet skeleton: stem conv filters
    stem_multiplier: float = 3.0  # CIFAR skeleton: stem conv = filters * multiplier
    skip_reduction: bool = False
    # Training-time settings of TF-slim's configs (cifar / mobile / large).
    drop_path_keep_prob: float = 1.0
    dropout: float = 0.0
    weight_decay: float = 0.0
    bn_momentum: float = 0.9997
    bn_epsilon: float = 1e-3
    # The paper's published figures (None where the paper gives none).
    paper_params: float | None = None
    paper_mult_adds: float | None = None
    paper_result: str = ""
    note: str = ""

    def build(self, **overrides):
        kwargs: dict[str, Any] = {
            "penultimate_filters": self.penultimate_filters,
            "num_blocks": self.num_blocks,
            "include_top": True,
            "weights": None,
            "classes": self.classes,
            "name": "nasnet_" + self.name.replace("@", "_at_"),
            "variant": self.name,
            "input_shape": (self.image_size, self.image_size, 3),
        }
        _check_overrides(self, NASNet if self.skeleton == "imagenet" else NASNetCIFAR, overrides)
        if self.skeleton == "imagenet":
            kwargs.update(stem_block_filters=self.stem_filters, skip_reduction=self.skip_reduction,
                          default_size=self.image_size)
            kwargs.update(overrides)
            return NASNet(**kwargs)
        kwargs.update(stem_multiplier=self.stem_multiplier, bn_momentum=self.bn_momentum,
                      bn_epsilon=self.bn_epsilon)
        kwargs.update(overrides)
        return NASNetCIFAR(**kwargs)

    def training_kwargs(self) -> dict[str, Any]:
        """The regularisation settings the paper / TF-slim trained this variant with."""
        return {
            "drop_path_keep_prob": self.drop_path_keep_prob,
            "dropout": self.dropout,
            "weight_decay": self.weight_decay,
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
        }


def _keras_applications(config: dict) -> dict[str, Any]:
    """A keras.applications configuration (`applications.MOBILE` / `LARGE`) as Variant fields."""
    return {"num_blocks": config["num_blocks"], "penultimate_filters": config["penultimate_filters"],
            "image_size": config["default_size"], "stem_filters": config["stem_block_filters"],
            "skip_reduction": config["skip_reduction"]}


def _check_overrides(variant: "Variant", constructor, overrides: dict) -> None:
    """An unknown override is a ValueError naming it and the accepted ones (not a TypeError)."""
    import inspect

    accepted = [name for name in inspect.signature(constructor).parameters if name != "kwargs"]
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ValueError(
            f"Unknown override(s) {', '.join(map(repr, unknown))} for variant {variant.name!r} "
            f"({constructor.__name__}). Accepted: {', '.join(accepted)}"
        )


_IMAGENET_MOBILE = dict(drop_path_keep_prob=1.0, dropout=0.5, weight_decay=4e-5)
_IMAGENET_LARGE = dict(drop_path_keep_prob=0.7, dropout=0.5, weight_decay=5e-5)
_CIFAR = dict(drop_path_keep_prob=0.6, weight_decay=5e-4, bn_momentum=0.9, bn_epsilon=1e-5)

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("mobile", "4 @ 1056", "imagenet", classes=1000, **_keras_applications(MOBILE),
                paper_params=5.3e6, paper_mult_adds=564e6, paper_result="74.0 / 91.6", **_IMAGENET_MOBILE),
        Variant("5@1538", "5 @ 1538", "imagenet", 5, 1536, 299, 1000, stem_filters=32,
                paper_params=10.9e6, paper_mult_adds=2.35e9, paper_result="78.6 / 94.2",
                note="F=1538 is not a multiple of 24; built as 5 @ 1536 (64 filters)", **_IMAGENET_MOBILE),
        Variant("7@1920", "7 @ 1920", "imagenet", 7, 1920, 299, 1000, stem_filters=32,
                paper_params=22.6e6, paper_mult_adds=4.93e9, paper_result="80.8 / 95.3", **_IMAGENET_MOBILE),
        Variant("large", "6 @ 4032", "imagenet", classes=1000, **_keras_applications(LARGE),
                paper_params=88.9e6, paper_mult_adds=23.8e9, paper_result="82.7 / 96.2", **_IMAGENET_LARGE),
        Variant("cifar_6@768", "6 @ 768", "cifar", 6, 768, 32, 10,
                paper_params=3.3e6, paper_result="3.41% (2.65% cutout)", **_CIFAR),
        Variant("cifar_7@2304", "7 @ 2304", "cifar", 7, 2304, 32, 10,
                paper_params=27.6e6, paper_result="2.97% (2.40% cutout)", **_CIFAR),
    )
}


def get(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"Unknown variant {name!r}. Named variants: {', '.join(VARIANTS)}") from None


def build(name: str, **overrides):
    """Build a named variant; keyword overrides go to NASNet / NASNetCIFAR."""
    return get(name).build(**overrides)
