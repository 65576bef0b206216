"""Training one child network: the paper's architecture-search recipe, and its failures.

Every architecture sampled during search is scored the same way (App. A.1, A.6): the
CIFAR skeleton with N = 2 cells per stack, trained for 20 epochs with momentum 0.9,
L2 weight decay and a single-period cosine learning-rate decay, on the training part
of the search split, with the paper's augmentation; the reward is its accuracy on the
held-out part (never the test split). `ChildConfig` holds that recipe (its defaults are
the paper's where the paper gives a value) and `train_child` runs it.

A search samples thousands of children, and some of them break: a wide cell runs out of
accelerator memory, a bad op mix diverges to NaN. Neither may stop the search, so both
end as `ChildFailedError` (a `keras_tuner.errors.FailedTrialError`: the trial is marked
FAILED, not retried - the failure is a property of the architecture, retrying wastes the
budget). Memory is released before and after every child with
`keras.backend.clear_session()`, so a long search does not grow without bound.

This module knows Keras and keras-tuner's error type, but not the search: the tuner,
the retraining stage and the demo all call `train_child`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import time
from typing import Any, Mapping, Sequence

import keras
import keras_tuner
import tensorflow as tf

from nasnet_keras import variants
from nasnet_keras.applications import NASNetCIFAR
from nasnet_keras.checks import check_choice, check_int, check_number
from nasnet_keras.data import pipeline
from nasnet_keras.genotype import as_genotype
from nasnet_keras.training.recipes import RECIPES, CifarRecipe

# Tracing a NASNet child into a graph costs 20-40 s on a 2-core CPU (thousands of ops,
# then Grappler), while an eager step of a tiny child costs 1-2 s. Below this many
# training steps, on a machine without a GPU, eager execution finishes first.
EAGER_MAX_STEPS = 24

# Where the search recipe's values are declared (see ChildConfig).
_CIFAR_RECIPE: CifarRecipe = RECIPES["cifar"]
_CIFAR_VARIANT = variants.get("cifar_6@768")


@dataclasses.dataclass(frozen=True)
class ChildConfig:
    """How a child is built and trained. Defaults follow the paper's search (App. A.1, A.6).

    The paper states N = 2, 20 epochs, momentum 0.9, L2 weight decay and single-period
    cosine decay, but not the filters, the learning rate, the batch size or the decay
    strength. The rest is the CIFAR recipe of the final models, read from where it is
    declared, not repeated: learning rate 0.025 at batch 32 and momentum from
    `nasnet_keras.training.recipes.CifarRecipe`, weight decay, stem multiplier and
    BatchNorm from the `cifar_6@768` variant (TF-slim's CIFAR config); 32 filters is slim's
    CIFAR search width. Children are trained by that recipe's optimizer (`child_recipe`).

    Attributes:
        classes: number of output classes.
        num_cells: N, Normal cells per stack (paper's search: 2).
        filters: F, filters per cell in the first stack (doubled at each reduction).
        epochs: training epochs per child (paper: 20).
        batch_size, learning_rate, momentum, weight_decay: the SGD recipe; the cosine
            schedule decays `learning_rate` to 0 over `epochs`.
        image_size: resize images to this size first (None keeps them); smaller proxy
            images make search children cheaper.
        augment: pad-crop and flip training images (whitening is always applied).
        clip_global_norm: optional global gradient-norm clipping (None: the paper's search, none).
        run_eagerly: True, False or "auto" (eager when the child trains for fewer than
            `EAGER_MAX_STEPS` steps and no GPU is visible; see the constant).
        grappler: run TensorFlow's graph optimizer (Grappler) on the child's train and
            evaluate graphs. Off by default: see `child_graph_options`.
        seed: seeds weights, shuffling and augmentation (`keras.utils.set_random_seed`,
            which also reseeds Python's and NumPy's global generators).
    """

    classes: int = 10
    num_cells: int = 2
    filters: int = 32
    epochs: int = 20
    batch_size: int = _CIFAR_RECIPE.base_batch_size
    learning_rate: float = _CIFAR_RECIPE.base_learning_rate
    momentum: float = _CIFAR_RECIPE.momentum
    weight_decay: float = _CIFAR_VARIANT.weight_decay
    stem_multiplier: float = _CIFAR_VARIANT.stem_multiplier
    image_size: int | None = None
    augment: bool = True
    bn_momentum: float = _CIFAR_VARIANT.bn_momentum
    bn_epsilon: float = _CIFAR_VARIANT.bn_epsilon
    clip_global_norm: float | None = None
    run_eagerly: bool | str = "auto"
    seed: int | None = None
    grappler: bool = False

    def __post_init__(self) -> None:
        where = "ChildConfig"
        for name in ("classes", "num_cells", "filters", "epochs", "batch_size"):
            check_int(name, getattr(self, name), minimum=2 if name in ("classes", "filters") else 1, where=where)
        for name in ("learning_rate", "weight_decay", "stem_multiplier"):
            check_number(name, getattr(self, name), minimum=0, where=where)
        check_int("image_size", self.image_size, minimum=8, allow_none=True, where=where,
                  hint=" (the skeleton reduces twice)")
        check_choice("run_eagerly", self.run_eagerly, (True, False, "auto"), where=where)
        check_choice("grappler", self.grappler, (True, False), where=where)
        child_recipe(self)  # the optimizer's own fields (momentum, clipping) are checked by the recipe

    def replace(self, **changes: Any) -> "ChildConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ChildConfig":
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Unknown ChildConfig keys {sorted(unknown)}. Accepted: {', '.join(sorted(known))}")
        return cls(**data)


class ChildFailedError(keras_tuner.errors.FailedTrialError):
    """A child that cannot be scored: `reason` is "nan" (diverged) or "oom" (out of memory).

    Being a `FailedTrialError`, it makes keras-tuner mark the trial FAILED and go on.
    """

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass
class ChildResult:
    """The outcome of one child: `accuracy` on the held-out data is the search's reward."""

    genotype_id: str
    accuracy: float
    loss: float
    params: int
    seconds: float
    epochs: int
    history: dict[str, list[float]]
    model: keras.Model | None = dataclasses.field(default=None, repr=False)

    def metrics(self, objective: str = "val_accuracy") -> dict[str, float]:
        """What a tuner reports to its oracle; `objective` carries the reward."""
        return {objective: self.accuracy, "val_loss": self.loss, "params": float(self.params),
                "train_seconds": self.seconds}


def release_memory() -> None:
    """Drop Keras' global state and collect garbage, so children do not accumulate."""
    keras.backend.clear_session()
    gc.collect()


def build_child(genotype, input_shape: Sequence[int], config: ChildConfig) -> keras.Model:
    """The CIFAR skeleton for `genotype`, sized by `config` (no drop-path or aux head)."""
    return NASNetCIFAR(
        input_shape=tuple(input_shape),
        num_blocks=config.num_cells,
        filters=config.filters,
        stem_multiplier=config.stem_multiplier,
        classes=config.classes,
        genotype=as_genotype(genotype),
        weight_decay=config.weight_decay,
        bn_momentum=config.bn_momentum,
        bn_epsilon=config.bn_epsilon,
        name=f"child_{as_genotype(genotype).id}",
    )


def make_loss():
    """The training loss; a function so tests can swap in a diverging one."""
    return keras.losses.SparseCategoricalCrossentropy()


def child_recipe(config: ChildConfig) -> CifarRecipe:
    """The CIFAR recipe at the child's size: SGD with momentum and a single-period cosine
    decay from `learning_rate` over all training steps (no auxiliary head, no EMA)."""
    return CifarRecipe(epochs=config.epochs, batch_size=config.batch_size, base_batch_size=config.batch_size,
                       base_learning_rate=config.learning_rate, momentum=config.momentum,
                       clip_global_norm=config.clip_global_norm, aux_loss_weight=0.0)


def compile_child(model: keras.Model, config: ChildConfig, steps_per_epoch: int, *,
                  create_variables: bool = True) -> None:
    """Compile with `child_recipe`'s optimizer (SGD, momentum, cosine decay to 0).

    `create_variables` (default) then creates the optimizer's and the metrics' variables
    at once (`create_training_variables`), so that `fit` traces its step once, not twice.
    """
    model.compile(
        optimizer=child_recipe(config).optimizer(steps_per_epoch),
        loss=make_loss(),
        metrics=["accuracy"],
        run_eagerly=_run_eagerly(config, steps_per_epoch),
        jit_compile=False,  # XLA compiles a NASNet child for longer than a short training takes
    )
    if create_variables:
        create_training_variables(model, config.batch_size)


def create_training_variables(model: keras.Model, batch_size: int) -> None:
    """Create a compiled model's optimizer, metric and loss-tracker variables now, eagerly.

    Without a distribution strategy Keras creates them inside the first traced train
    step, and TensorFlow traces a `tf.function` that creates variables twice (once to
    create them, once more without). A child's train step has ~15,000 nodes, so this
    halves its trace: the paper's search child's first `fit` step took 18.9 s, 9.5 s
    after this (2026-12-02, 2-core CPU; optimizer variables alone: 15.4 s, the metrics'
    two variables still force the second trace). Keras builds this state itself with
    `Trainer._symbolic_build` when a distribution strategy is in scope; this calls the
    same method, with symbolic (batch_size, H, W, C) float images and int64 labels.
    """
    images = tf.TensorSpec((batch_size, *model.input_shape[1:]), model.inputs[0].dtype)
    labels = tf.TensorSpec((batch_size,), tf.int64)
    with model.distribute_strategy.scope():  # as Keras does: variables where the model's live
        model._symbolic_build(data_batch=(images, labels))


@contextlib.contextmanager
def child_graph_options(config: ChildConfig):
    """Within this block, graphs first run (traced `fit`/`evaluate` steps) skip Grappler
    unless `config.grappler`.

    A child's graph has ~14,000 nodes (N = 2, F = 32) and runs for a few hundred steps:
    Grappler's passes cost more than they save. Measured for the paper's search child
    (N = 2, F = 32, batch 32, fused BatchNorm, 2-core CPU, one process each, load ~1.1):
    Python tracing of the train step 13.9 s either way; its first call 6.4 s with Grappler,
    2.5 s without; steady step 0.81 s with, 0.66 s without. (For NASNetMobile at 224x224
    Grappler does pay: without it our inference fell from 1.09x to 0.86x
    keras.applications' speed, so the models keep it.) The setting is TensorFlow's
    per-thread function-call option, read when a traced function is first run, and is
    restored on exit.
    """
    if config.grappler:
        yield
        return
    previous = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": previous})


def _run_eagerly(config: ChildConfig, steps_per_epoch: int) -> bool:
    if config.run_eagerly != "auto":
        return bool(config.run_eagerly)
    return config.epochs * steps_per_epoch < EAGER_MAX_STEPS and not tf.config.list_physical_devices("GPU")


def input_shape_of(train: tf.data.Dataset, config: ChildConfig) -> tuple[int, int, int]:
    """(H, W, C) the child will see: the dataset's, or `config.image_size` square."""
    shape = train.element_spec[0].shape
    if shape.rank != 3:
        raise ValueError(
            f"train_child expects unbatched (image HxWxC, label) examples. Received element shape {shape}"
        )
    channels = shape[-1]
    if config.image_size is not None:
        return config.image_size, config.image_size, channels
    if shape[0] is None or shape[1] is None:
        raise ValueError(f"Images have no fixed size ({shape}); set ChildConfig.image_size")
    return shape[0], shape[1], channels


def _num_batches(ds: tf.data.Dataset) -> int:
    count = int(ds.cardinality())
    if count >= 0:
        return count
    return sum(1 for _ in ds)  # unknown cardinality (e.g. after filter): count once


def _finite(values) -> bool:
    return all(math.isfinite(float(v)) for v in values)


def train_child(
    genotype,
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
    config: ChildConfig = ChildConfig(),
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
    keep_model: bool = False,
) -> ChildResult:
    """Train `genotype` on `train`, score it on `validation`, and release its memory.

    Args:
        genotype: a Genotype (or anything `as_genotype` accepts).
        train, validation: unbatched `(uint8 image, int label)` examples, e.g. from
            `nasnet_keras.data.search_split`. Both are cached in memory for the epochs.
        config: the training recipe.
        callbacks: extra Keras callbacks for `fit`.
        verbose: Keras progress output for `fit` and `evaluate`.
        keep_model: return the trained model in `ChildResult.model` (and keep its memory).

    Raises:
        ChildFailedError: the child ran out of memory or its loss became NaN/inf.
    """
    genotype = as_genotype(genotype)
    release_memory()
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)
    start = time.perf_counter()
    shape = input_shape_of(train, config)
    train_batches = pipeline(train, config.batch_size, training=True, image_size=config.image_size,
                             augment=config.augment, cache=True, seed=config.seed)
    val_batches = pipeline(validation, max(config.batch_size, 64), training=False, image_size=config.image_size,
                           cache=True)
    steps = _num_batches(train_batches)
    if steps == 0:
        raise ValueError("train_child: the training data is empty")
    model = None
    try:
        model = build_child(genotype, shape, config)
        compile_child(model, config, steps)
        with child_graph_options(config):
            history = model.fit(
                train_batches,
                epochs=config.epochs,
                verbose=verbose,
                callbacks=[keras.callbacks.TerminateOnNaN(), *callbacks],
                shuffle=False,  # the pipeline shuffles; Keras cannot shuffle a tf.data.Dataset
            )
        losses = history.history.get("loss", [])
        # TerminateOnNaN only stops training; the NaN weights would still "score" at
        # chance level (argmax of NaN), so a diverged child must be failed explicitly.
        if not losses or not _finite(losses):
            raise ChildFailedError(
                f"child {genotype.id} diverged: training loss {losses[-1] if losses else float('nan')} "
                f"at epoch {len(losses)} of {config.epochs}",
                reason="nan",
            )
        with child_graph_options(config):
            val_loss, accuracy = model.evaluate(val_batches, verbose=verbose)
        if not _finite([val_loss, accuracy]):
            raise ChildFailedError(
                f"child {genotype.id} diverged: held-out loss {val_loss}, accuracy {accuracy}", reason="nan"
            )
        result = ChildResult(
            genotype_id=genotype.id,
            accuracy=float(accuracy),
            loss=float(val_loss),
            params=int(model.count_params()),
            seconds=time.perf_counter() - start,
            epochs=len(losses),
            history={key: [float(v) for v in values] for key, values in history.history.items()},
            model=model if keep_model else None,
        )
    except (tf.errors.ResourceExhaustedError, MemoryError) as error:
        model = None
        release_memory()
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        raise ChildFailedError(
            f"child {genotype.id} ran out of memory ({type(error).__name__}: {first_line}); "
            "a smaller --filters/--batch-size or --image-size makes children fit",
            reason="oom",
        ) from error
    finally:
        if not keep_model:
            del model
            release_memory()
    return result

