"""The paper's training recipes for the final models, as dataclasses holding the paper's values.

A recipe is everything about *how* a model is trained that is not the architecture:
optimizer, learning-rate schedule, batch size, epochs, losses (auxiliary-head weight,
label smoothing), the moving average of weights, augmentation and which splits are
trained on and evaluated. The model-side regularisation (drop-path keep probability,
dropout, L2 weight decay, BatchNorm settings) lives with each named variant in
`nasnet_keras.variants` (TF-slim's per-model configs); a recipe field left at `None`
takes the variant's value, a number overrides it.

Sources, field by field (paper = Zoph et al. 2018; slim = tensorflow/models
research/slim/nets/nasnet/nasnet.py, its "Notes for training" comments and configs):

CIFAR (`CifarRecipe`)
    momentum 0.9, single-period cosine decay, L2 weight decay ........ paper App. A.6
    lr 0.025 at batch 32, aux-head loss weight 0.4, clip global norm 5 .. slim cifar notes
    600 epochs (slim: total_training_steps = 937500 = 600 x 50000 / 32) . slim cifar_config
    drop-path keep 0.6, weight decay 5e-4 ............................. slim (via the variant)
    cutout 16x16 .............................. paper Table 1 (+ cutout [12]), DeVries & Taylor
    whitening, pad 4 + random crop, horizontal flips .................. paper App. A.1
ImageNet (`ImageNetRecipe`, defaults = NASNet-A Mobile's notes)
    RMSProp decay 0.9, epsilon 1.0; EMA of weights 0.9999 for evaluation;
    label smoothing 0.1; aux head 0.4; dropout 0.5; L2; exponential decay  paper App. A.7
    lr 0.04 per 32 images (slim: "0.04 * 50" for 50 replicas x 32), decay 0.97 every
    2.4 epochs, clip global norm 10 .................................... slim mobile notes
    large: lr 0.015 per 16 images ("0.015 * 100", 100 replicas x 16) .... slim large notes
    RMSProp momentum 0.9 (paper silent) ................... slim train_image_classifier default
    Inception crops (min object covered 0.1, aspect 3/4..4/3, area 5%..100%), flips,
    central 87.5% crop for evaluation, pixels scaled to [-1, 1] .......... slim
        inception_preprocessing (the "[60]" procedures the paper points to)
    epochs: neither the paper nor slim states them; 100 is this package's choice.

Where we differ from slim, by design: the learning rate scales linearly with the batch
size (`base_learning_rate` is for `base_batch_size` images, as slim's own notes do across
replicas), and Keras' EMA uses a constant momentum (slim's `ExponentialMovingAverage`
ramps the decay up over the first steps), so a short run with `ema_momentum=0.9999`
evaluates weights close to their initial values: `check_ema_horizon` warns about it.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
import warnings
from typing import Any, ClassVar

import keras


def top5_accuracy(y_true, y_pred):
    """Top-5 accuracy that also takes float16 predictions (mixed precision).

    Keras' `TopKCategoricalAccuracy` hands float16 predictions to `tf.math.in_top_k`,
    which accepts float32 only (Keras 3.15), so the ImageNet recipe under
    --mixed-precision would fail at its first step without this cast.
    """
    return keras.metrics.top_k_categorical_accuracy(y_true, keras.ops.cast(y_pred, "float32"), k=5)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Recipe:
    """Fields shared by every recipe; subclasses set the paper's values as defaults."""

    name: ClassVar[str] = "recipe"

    epochs: int = 1
    batch_size: int = 32
    base_learning_rate: float = 0.01
    base_batch_size: int = 32
    aux_loss_weight: float = 0.4
    label_smoothing: float = 0.0
    clip_global_norm: float | None = None
    ema_momentum: float | None = None
    # None: the named variant's own value (TF-slim's config for that model).
    drop_path_keep_prob: float | None = None
    weight_decay: float | None = None
    dropout: float | None = None
    train_split: str = "train"
    eval_split: str = "test"
    flip: bool = True
    report_top5: bool = False

    def __post_init__(self) -> None:
        for field in ("epochs", "batch_size", "base_batch_size"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{field}` must be a positive integer. Received: {field}={value!r}")
        if not (self.base_learning_rate > 0 and math.isfinite(self.base_learning_rate)):
            raise ValueError(f"`base_learning_rate` must be a finite number > 0. Received: {self.base_learning_rate!r}")
        if not (self.aux_loss_weight >= 0 and math.isfinite(self.aux_loss_weight)):
            raise ValueError(f"`aux_loss_weight` must be >= 0 (0 removes the head). Received: {self.aux_loss_weight!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"`label_smoothing` must be in [0, 1). Received: {self.label_smoothing!r}")
        if self.clip_global_norm is not None and not self.clip_global_norm > 0:
            raise ValueError(f"`clip_global_norm` must be > 0 or None. Received: {self.clip_global_norm!r}")
        if self.ema_momentum is not None and not 0 < self.ema_momentum < 1:
            raise ValueError(f"`ema_momentum` must be in (0, 1) or None (no EMA). Received: {self.ema_momentum!r}")
        if self.drop_path_keep_prob is not None and not 0 < self.drop_path_keep_prob <= 1:
            raise ValueError(f"`drop_path_keep_prob` must be in (0, 1]. Received: {self.drop_path_keep_prob!r}")
        if self.weight_decay is not None and not self.weight_decay >= 0:
            raise ValueError(f"`weight_decay` must be >= 0. Received: {self.weight_decay!r}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"`dropout` must be in [0, 1). Received: {self.dropout!r}")

    # --- derived quantities ----------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """Initial learning rate at this batch size (linear scaling from the base batch)."""
        return self.base_learning_rate * self.batch_size / self.base_batch_size

    def steps_per_epoch(self, train_examples: int) -> int:
        """Full batches per pass over the data (the last partial batch is dropped)."""
        steps = train_examples // self.batch_size
        if steps < 1:
            raise ValueError(
                f"The training split has {train_examples} examples, fewer than one batch of "
                f"batch_size={self.batch_size}. Use a smaller batch size or more examples"
            )
        return steps

    def total_steps(self, train_examples: int) -> int:
        return self.epochs * self.steps_per_epoch(train_examples)

    @property
    def uses_aux_head(self) -> bool:
        return self.aux_loss_weight > 0

    def model_overrides(self, variant_defaults: dict[str, Any]) -> dict[str, Any]:
        """Constructor keywords for the model: the variant's regularisation unless overridden here."""
        kwargs = dict(variant_defaults)
        for field in ("drop_path_keep_prob", "weight_decay", "dropout"):
            if getattr(self, field) is not None:
                kwargs[field] = getattr(self, field)
        kwargs["aux_head"] = self.uses_aux_head
        return kwargs

    # --- what compile() needs ----------------------------------------------------------
    def learning_rate_schedule(self, steps_per_epoch: int) -> keras.optimizers.schedules.LearningRateSchedule:
        raise NotImplementedError

    def optimizer(self, steps_per_epoch: int) -> keras.optimizers.Optimizer:
        raise NotImplementedError

    def _ema_kwargs(self) -> dict[str, Any]:
        if self.ema_momentum is None:
            return {}
        return {"use_ema": True, "ema_momentum": self.ema_momentum}

    def losses(self, output_names: list[str]):
        """(loss, loss_weights) for `model.compile`, one cross-entropy per model output.

        With the auxiliary head the total loss is `main + aux_loss_weight * aux` (plus the
        L2 terms the layers add), which is how the paper (after Inception-v3) weighs it;
        both heads see the same label smoothing, as in slim's train_image_classifier.
        """
        def cross_entropy():
            return keras.losses.CategoricalCrossentropy(label_smoothing=self.label_smoothing)

        if len(output_names) == 1:
            return cross_entropy(), None
        weights = {}
        for name in output_names:
            if name == "predictions":
                weights[name] = 1.0
            elif name == "aux_predictions":
                weights[name] = self.aux_loss_weight
            else:
                raise ValueError(
                    f"Unexpected model output {name!r}: a NASNet classifier has outputs 'predictions' "
                    f"and optionally 'aux_predictions'. Received outputs: {output_names}"
                )
        return {name: cross_entropy() for name in output_names}, weights

    def metrics(self, output_names: list[str]):
        """Accuracy (and top-5 where the recipe reports it) on the main classifier only."""
        metrics = ["accuracy"]
        if self.report_top5:
            metrics.append(keras.metrics.MeanMetricWrapper(top5_accuracy, name="top5"))
        return metrics if len(output_names) == 1 else {"predictions": metrics}

    def check_ema_horizon(self, total_steps: int) -> None:
        """Warn when a constant-momentum EMA cannot forget the initial weights in `total_steps`."""
        if self.ema_momentum is None:
            return
        # The initial weights keep a share momentum**steps of the average.
        if total_steps * -math.log(self.ema_momentum) < 3.0:  # share > 5%
            horizon = round(1.0 / (1.0 - self.ema_momentum))
            warnings.warn(
                f"ema_momentum={self.ema_momentum} averages over the last ~{horizon} steps but this run has only "
                f"{total_steps}: the evaluated (EMA) weights will still be close to the initial ones. "
                "Lower ema_momentum for short runs (e.g. --set ema_momentum=0.99), or train longer",
                stacklevel=2,
            )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class CifarRecipe(Recipe):
    """CIFAR final models: SGD momentum, single-period cosine decay, cutout (paper App. A.6)."""

    name: ClassVar[str] = "cifar"

    epochs: int = 600
    batch_size: int = 32
    base_learning_rate: float = 0.025
    base_batch_size: int = 32
    momentum: float = 0.9
    aux_loss_weight: float = 0.4
    clip_global_norm: float | None = 5.0
    cutout_size: int = 16
    pad: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.momentum < 1:
            raise ValueError(f"`momentum` must be in [0, 1). Received: momentum={self.momentum!r}")
        for field in ("cutout_size", "pad"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{field}` must be a non-negative integer (0 disables). Received: {value!r}")

    def learning_rate_schedule(self, steps_per_epoch: int):
        """Cosine from `learning_rate` to 0 over the whole run, one period (SGDR with no restart)."""
        return keras.optimizers.schedules.CosineDecay(
            self.learning_rate, decay_steps=self.epochs * steps_per_epoch, alpha=0.0
        )

    def optimizer(self, steps_per_epoch: int):
        return keras.optimizers.SGD(
            self.learning_rate_schedule(steps_per_epoch),
            momentum=self.momentum,
            global_clipnorm=self.clip_global_norm,
            **self._ema_kwargs(),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageNetRecipe(Recipe):
    """ImageNet models: RMSProp, exponential decay, label smoothing, EMA evaluation (App. A.7)."""

    name: ClassVar[str] = "imagenet"

    epochs: int = 100
    batch_size: int = 32
    base_learning_rate: float = 0.04
    base_batch_size: int = 32
    rmsprop_decay: float = 0.9
    rmsprop_momentum: float = 0.9
    rmsprop_epsilon: float = 1.0
    decay_rate: float = 0.97
    epochs_per_decay: float = 2.4
    staircase: bool = True
    aux_loss_weight: float = 0.4
    label_smoothing: float = 0.1
    clip_global_norm: float | None = 10.0
    ema_momentum: float | None = 0.9999
    eval_split: str = "validation"
    image_size: int | None = None  # None: the variant's size (224 mobile, 299, 331 large)
    crop_min_object_covered: float = 0.1
    crop_aspect_ratio_range: tuple[float, float] = (0.75, 1.33)
    crop_area_range: tuple[float, float] = (0.05, 1.0)
    eval_central_fraction: float = 0.875
    report_top5: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.decay_rate <= 1:
            raise ValueError(f"`decay_rate` must be in (0, 1]. Received: decay_rate={self.decay_rate!r}")
        if not self.epochs_per_decay > 0:
            raise ValueError(f"`epochs_per_decay` must be > 0. Received: {self.epochs_per_decay!r}")
        if not 0 < self.eval_central_fraction <= 1:
            raise ValueError(f"`eval_central_fraction` must be in (0, 1]. Received: {self.eval_central_fraction!r}")
        if self.image_size is not None and (isinstance(self.image_size, bool) or not isinstance(self.image_size, int)
                                            or self.image_size < 1):
            raise ValueError(f"`image_size` must be a positive integer or None. Received: {self.image_size!r}")
        for field in ("crop_aspect_ratio_range", "crop_area_range"):
            low, high = getattr(self, field)
            if not 0 < low <= high:
                raise ValueError(f"`{field}` must be (low, high) with 0 < low <= high. Received: {(low, high)}")
            object.__setattr__(self, field, (float(low), float(high)))

    def decay_steps(self, steps_per_epoch: int) -> int:
        return max(1, round(self.epochs_per_decay * steps_per_epoch))

    def learning_rate_schedule(self, steps_per_epoch: int):
        """`learning_rate * decay_rate ** floor(step / decay_steps)` (staircase, as slim's default)."""
        return keras.optimizers.schedules.ExponentialDecay(
            self.learning_rate,
            decay_steps=self.decay_steps(steps_per_epoch),
            decay_rate=self.decay_rate,
            staircase=self.staircase,
        )

    def optimizer(self, steps_per_epoch: int):
        return keras.optimizers.RMSprop(
            self.learning_rate_schedule(steps_per_epoch),
            rho=self.rmsprop_decay,
            momentum=self.rmsprop_momentum,
            epsilon=self.rmsprop_epsilon,
            global_clipnorm=self.clip_global_norm,
            **self._ema_kwargs(),
        )


# Named recipes. "imagenet" follows slim's NASNet-A Mobile notes (also used for the
# 5@1538 and 7@1920 models, which slim has no notes for); "imagenet_large" its Large notes.
RECIPES: dict[str, Recipe] = {
    "cifar": CifarRecipe(),
    "imagenet": ImageNetRecipe(),
    "imagenet_large": ImageNetRecipe(base_learning_rate=0.015, base_batch_size=16),
}


def default_recipe_name(variant_name: str, skeleton: str) -> str:
    """The recipe a named variant was trained with: CIFAR skeletons -> cifar, large -> imagenet_large."""
    if skeleton == "cifar":
        return "cifar"
    return "imagenet_large" if variant_name == "large" else "imagenet"


def get_recipe(recipe: str | Recipe, **overrides) -> Recipe:
    """A named recipe (or a Recipe) with `overrides` applied; unknown names and fields are errors.

    Override values may be given as text (from the command line): they are converted to
    the field's type, "none" giving None where a field accepts it.
    """
    if isinstance(recipe, Recipe):
        base = recipe
    elif isinstance(recipe, str) and recipe in RECIPES:
        base = RECIPES[recipe]
    else:
        raise ValueError(f"Unknown recipe {recipe!r}. Named recipes: {', '.join(RECIPES)}")
    if not overrides:
        return base
    fields = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"Unknown field(s) {unknown} for the {base.name!r} recipe. Fields: {', '.join(sorted(fields))}"
        )
    types = typing.get_type_hints(type(base))
    typed = {key: _convert(key, value, types[key]) if isinstance(value, str) else value
             for key, value in overrides.items()}
    return dataclasses.replace(base, **typed)


def parse_overrides(items: list[str]) -> dict[str, str]:
    """`["epochs=10", "ema-momentum=none"]` -> `{"epochs": "10", "ema_momentum": "none"}` (the CLI's --set)."""
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects FIELD=VALUE (e.g. epochs=20). Received: {item!r}")
        parsed[key.strip().replace("-", "_")] = text.strip()
    return parsed


def _convert(key: str, text: str, annotation) -> Any:
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    args = typing.get_args(annotation) if is_union else (annotation,)
    optional = type(None) in args
    if optional and text.lower() in ("none", "null", ""):
        return None
    kind = next(a for a in args if a is not type(None))
    kind = typing.get_origin(kind) or kind
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is tuple:
            return tuple(float(v) for v in text.strip("()[] ").split(","))
        return text
    except ValueError:
        kind_name = getattr(kind, "__name__", str(kind))
        raise ValueError(
            f"Recipe field {key}={text!r}: expected a {kind_name}" + (" or 'none'" if optional else "")
        ) from None
