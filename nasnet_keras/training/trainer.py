"""`train`: one call (or one `nasnet train` command) from a model name and a dataset to a trained,
evaluated, exported network, resumable after a kill.

Order of work, chosen so that bad input fails before anything is written:

1. decide: the model (`models.resolve_model`), the recipe, the fine-tuning source,
   the data plan (splits and sizes from the catalog; the data itself is located), the
   schedule length and the run manifest; check the run directory
   (`RunDirectory.check`), which refuses a directory holding another run;
2. build and compile the model (under the mixed-precision policy and the
   distribution strategy if asked); an image size the skeleton cannot take fails here;
3. write: the manifest, then either restore the latest checkpoint (weights, optimizer
   with its iteration count and EMA averages, drop-path progress) or copy the
   fine-tuning weights; train with Keras' `fit`; evaluate on the recipe's evaluation
   split (with the averaged weights when the recipe averages); save `final.keras`.

Everything that depends on the training step -- learning rate, drop-path probability --
is a function of the optimizer's iteration count, which the checkpoint restores, so a
resumed run continues the same schedules exactly. The data order after a resume is a
fresh shuffle (seeded by the step) rather than a replay of the interrupted epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from typing import Any

import keras
import tensorflow as tf

from nasnet_keras import variants
from nasnet_keras.drop_path import ScheduledDropPathCallback, drop_path_layers
from nasnet_keras.fileio import atomic_path
from nasnet_keras.training import averaged_weights as ema
from nasnet_keras.training import multi_worker_run
from nasnet_keras.training.divergence import DivergenceGuard, check_finite_metrics
from nasnet_keras.training.checkpointing import FINAL_MODEL, HISTORY, LOGS, CheckpointCallback, RunDirectory
from nasnet_keras.training.distribution import (
    DEFAULT_COLLECTIVE_TIMEOUT,
    make_distribution,
    peer_failures,
    synchronize_batch_norm,
)
from nasnet_keras.training.keras_distribute_fixes import (
    build_without_a_batch,
    clip_after_all_reduce,
    fix_multi_worker_log_reduction,
)
from nasnet_keras.training.inputs import DataPlan, evaluation_data, load_splits, plan_data, training_data
from nasnet_keras.training.models import (
    ModelSpec,
    build_model,
    inspect_weights,
    load_source_model,
    resolve_model,
    transfer_weights,
)
from nasnet_keras.training.recipes import Recipe, default_recipe_name, get_recipe


@dataclasses.dataclass
class TrainConfig:
    """Everything `train` needs; the CLI's flags map one to one onto these fields.

    Attributes:
        model: a named variant, or a genotype (name, JSON file, JSON text) placed on
            `base_variant`'s skeleton.
        dataset: a `nasnet_keras.data` catalog name (cifar10, fashion_mnist, imagenet2012, ...).
        directory: the run directory (checkpoints, logs, manifest, final model).
        recipe: "cifar", "imagenet" or "imagenet_large"; None picks the variant's own.
        recipe_overrides: recipe fields to change, e.g. {"epochs": 10}.
        base_variant: skeleton for a genotype `model`; None: cifar_6@768 for fixed-size
            small-image datasets, mobile for ImageNet-like ones.
        architecture: size overrides (num_blocks, filters, penultimate_filters).
        image_size: model input size; None follows the recipe (see `inputs.plan_data`).
        weights: fine-tune from "imagenet", a keras.applications .h5 or a .keras model.
        mixed_precision: train under the "mixed_float16" policy (loss scaling included).
        strategy: "auto", "one-device", "mirrored", "multi-worker" (TF_CONFIG) or "tpu"; see
            `distribution`. The recipe's `batch_size` is the global batch for every strategy.
        multi_gpu: deprecated alias of strategy="mirrored".
        sync_batch_norm: BatchNorm statistics over the global batch (all replicas) instead
            of each replica's share; then R replicas compute what one device does.
        collective_timeout: seconds a multi-worker collective may wait for the other
            workers before this worker gives up (None: forever).
        tpu: the TPU for strategy="tpu" (default: $TPU_NAME, else "local").
        jit_compile: XLA for the train step: True, False or "auto" (Keras: on for GPUs).
        overwrite: replace a different run found in `directory`.
        save_every_steps: checkpoint cadence in steps besides each epoch end.
        eval_every_epochs: also evaluate during training every N epochs (0: at the end only).
        seed: seeds Keras (initial weights, drop-path and dropout masks; this sets the
            global Python/NumPy/TensorFlow seeds) and the data order.
    """

    model: str = "cifar_6@768"
    dataset: str = "cifar10"
    directory: str = "runs/nasnet"
    recipe: str | None = None
    recipe_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    base_variant: str | None = None
    architecture: dict[str, int] = dataclasses.field(default_factory=dict)
    image_size: int | None = None
    weights: str | None = None
    mixed_precision: bool = False
    strategy: str = "auto"
    multi_gpu: bool = False
    sync_batch_norm: bool = False
    collective_timeout: float | None = DEFAULT_COLLECTIVE_TIMEOUT
    tpu: str | None = None
    jit_compile: bool | str = "auto"
    overwrite: bool = False
    save_every_steps: int | None = None
    keep_checkpoints: int = 2
    eval_every_epochs: int = 0
    eval_batch_size: int | None = None
    seed: int = 0
    verbose: int | str = "auto"
    tensorboard: bool = True
    data_dir: str | None = None
    manual_dir: str | None = None


@dataclasses.dataclass
class TrainResult:
    """What a run did: where it started (a resume starts at its checkpoint), where it ended, scores."""

    directory: str
    start_step: int
    final_step: int
    total_steps: int
    resumed: bool
    metrics: dict[str, float]
    history: dict[str, list]
    model: keras.Model = dataclasses.field(repr=False)


def compile_for_recipe(model: keras.Model, recipe: Recipe, steps_per_epoch: int, jit_compile="auto") -> None:
    """`model.compile` with the recipe's optimizer, schedule, losses (aux weight, smoothing) and metrics."""
    loss, loss_weights = recipe.losses(model.output_names)
    model.compile(
        optimizer=recipe.optimizer(steps_per_epoch),
        loss=loss,
        loss_weights=loss_weights,
        metrics=recipe.metrics(model.output_names),
        jit_compile=jit_compile,
    )


class TrainingStateLogger(keras.callbacks.Callback):
    """Records where each (re)start begins and adds drop-path progress to the epoch logs.

    Placed after `ScheduledDropPathCallback`, so the recorded progress is the value the
    first step will use. The learning rate is already logged by Keras (TensorBoard).
    """

    def __init__(self, run_dir: RunDirectory, resumed: bool, total_steps: int):
        super().__init__()
        self.run_dir = run_dir
        self.resumed = resumed
        self.total_steps = total_steps

    def _progress(self):
        scheduled = [layer for layer in drop_path_layers(self.model) if layer.max_rate > 0]
        return float(keras.ops.convert_to_numpy(scheduled[0].progress)) if scheduled else None

    def on_train_begin(self, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.run_dir.log_event(
            "resume" if self.resumed else "start",
            step=step,
            total_steps=self.total_steps,
            learning_rate=float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            drop_path_progress=self._progress(),
        )
        self.resumed = True  # a later fit() of the same run continues it

    def on_epoch_end(self, epoch, logs=None):
        progress = self._progress()
        if logs is not None and progress is not None:
            logs["drop_path_progress"] = progress


@contextlib.contextmanager
def dtype_policy(mixed_precision: bool):
    """Build under "mixed_float16" without leaving the global policy changed for the caller."""
    if not mixed_precision:
        yield
        return
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _default_base_variant(dataset: str) -> str:
    from nasnet_keras import data

    height = data.info(dataset).image_shape[0]
    return "cifar_6@768" if height is not None and height <= 64 else "mobile"


def _strategy_name(config: TrainConfig) -> str:
    if not config.multi_gpu:
        return config.strategy
    warnings.warn("`multi_gpu` (--multi-gpu) is deprecated: use strategy='mirrored' (--strategy mirrored)",
                  DeprecationWarning, stacklevel=3)
    if config.strategy not in ("auto", "mirrored"):
        raise ValueError(f"--multi-gpu means --strategy mirrored; it contradicts --strategy {config.strategy}")
    return "mirrored"


def _distributed_settings(config: TrainConfig, distribution) -> dict[str, Any]:
    """Settings besides the manifest that every worker of a job must share (they drive collectives)."""
    return {
        "seed": config.seed,
        "strategy": distribution.name,
        "replicas": distribution.replicas,
        "sync_batch_norm": bool(config.sync_batch_norm),
        "save_every_steps": config.save_every_steps,
        "eval_every_epochs": config.eval_every_epochs,
        "eval_batch_size": config.eval_batch_size,
        "jit_compile": config.jit_compile,
        "tensorflow_version": tf.__version__,
    }


def _warn_about_cpu_only_options(config: TrainConfig) -> None:
    """Mixed precision and XLA are GPU options: on a CPU they cost (benchmarks/training.py measures it)."""
    if tf.config.list_physical_devices("GPU"):
        return
    if config.mixed_precision:
        warnings.warn("--mixed-precision without a GPU: CPUs emulate float16, so training is much slower "
                      "(about 30x in benchmarks/training.py on a 2-core CPU)", stacklevel=3)
    if config.jit_compile is True:
        warnings.warn("--jit-compile on without a GPU: XLA-compiled NASNet steps are much slower on CPUs "
                      "(about 15x in benchmarks/training.py); 'auto' leaves XLA to GPUs", stacklevel=3)


def _manifest(spec: ModelSpec, plan: DataPlan, recipe: Recipe, config: TrainConfig) -> dict[str, Any]:
    import nasnet_keras

    return {
        "model": spec.to_dict(),
        "data": plan.to_dict(),
        "recipe": recipe.to_dict(),
        "mixed_precision": bool(config.mixed_precision),
        "init_weights": None if config.weights is None else os.fspath(config.weights),
        "nasnet_keras_version": nasnet_keras.__version__,
        "keras_version": keras.__version__,
    }


def train(config: TrainConfig | None = None, **kwargs) -> TrainResult:
    """Train (or resume) a NASNet with a paper recipe; see `TrainConfig` for the arguments."""
    config = dataclasses.replace(config or TrainConfig(), **kwargs)

    # 1. Decide everything, write nothing.
    spec = resolve_model(config.model, config.base_variant or _default_base_variant(config.dataset),
                         **config.architecture)
    variant = variants.get(spec.variant)
    recipe = get_recipe(config.recipe or default_recipe_name(spec.variant, variant.skeleton),
                        **config.recipe_overrides)
    # Before TensorFlow runs anything: multi-worker collectives are configured at start-up.
    distribution = make_distribution(_strategy_name(config), recipe.batch_size, tpu=config.tpu,
                                     collective_timeout=config.collective_timeout)
    strategy = distribution.strategy
    source = inspect_weights(config.weights) if config.weights is not None else None
    plan = plan_data(
        config.dataset, recipe, default_image_size=variant.image_size, image_size=config.image_size,
        channels=source.channels if source else None, data_dir=config.data_dir, manual_dir=config.manual_dir,
    )
    train_examples, eval_examples = load_splits(plan)
    steps_per_epoch = recipe.steps_per_epoch(plan.train_examples)
    total_steps = recipe.total_steps(plan.train_examples)
    recipe.check_ema_horizon(total_steps)
    _warn_about_cpu_only_options(config)
    manifest = _manifest(spec, plan, recipe, config)
    run_dir, resume = multi_worker_run.open_run(distribution, config.directory, manifest,
                                                _distributed_settings(config, distribution), config.overwrite)

    # 2. Build and compile.
    keras.utils.set_random_seed(config.seed)  # initial weights, drop-path and dropout masks
    model_kwargs = recipe.model_overrides(variant.training_kwargs())
    with dtype_policy(config.mixed_precision), strategy.scope():
        model = build_model(spec, plan.input_shape, plan.num_classes, model_kwargs)
        if config.sync_batch_norm:
            synchronize_batch_norm(model)
        if distribution.name != "one-device":
            build_without_a_batch(model)
        if distribution.name == "multi-worker":
            fix_multi_worker_log_reduction()
        compile_for_recipe(model, recipe, steps_per_epoch, config.jit_compile)
        if distribution.name != "one-device":
            clip_after_all_reduce(model.optimizer)
        if source is not None and not resume:
            copied = transfer_weights(load_source_model(source, spec, plan.input_shape, model_kwargs), model)
        else:
            copied = None

    # 3. Write, resume, train, evaluate, export.
    run_dir.start(manifest, config.overwrite)
    multi_worker_run.confirm_shared(distribution, run_dir)
    if distribution.name != "one-device":
        run_dir.log_event("distribution", **distribution.describe(recipe))
        print(_describe_distribution(distribution.describe(recipe)))
    with peer_failures(distribution, "during training",
                       f"; the job resumes from the latest checkpoint in {run_dir.file('checkpoints')}"):
        return _run(model, run_dir, config, recipe, plan, strategy, distribution, resume, copied, train_examples,
                    eval_examples, steps_per_epoch, total_steps)


def _describe_distribution(described: dict[str, Any]) -> str:
    return (f"{described['task']}: --strategy {described['strategy']}, {described['workers']} worker(s), "
            f"{described['replicas']} replica(s): global batch {described['global_batch_size']} = "
            f"{described['replicas']} x {described['per_replica_batch_size']}; learning rate "
            f"{described['learning_rate']:g} = {described['learning_rate_rule']}")


def _run(model, run_dir, config, recipe, plan, strategy, distribution, resume, copied, train_examples,
         eval_examples, steps_per_epoch, total_steps) -> TrainResult:
    if copied is not None:
        run_dir.log_event("init_weights", source=config.weights, layers_copied=copied)
    with strategy.scope():
        start_step = run_dir.restore(model) if resume else 0
    if start_step > total_steps:
        raise ValueError(f"The checkpoint is at step {start_step}, beyond this run's {total_steps} steps")
    if resume:
        print(f"Resuming the run in {run_dir.path} from its checkpoint at step {start_step} of {total_steps}")
    output_names = list(model.output_names)
    eval_ds = evaluation_data(eval_examples, plan, recipe, output_names, config.eval_batch_size)
    callbacks = _callbacks(model, run_dir, config, resume, total_steps, distribution.is_chief)
    history = _fit(model, run_dir, train_examples, plan, recipe, config, output_names, eval_ds, callbacks,
                   start_step, steps_per_epoch, total_steps, distribution.training_batches)
    if not history:
        ema.use_averaged_weights(model)  # fit() was not needed, so it did not swap the averages in
    final_step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    metrics = model.evaluate(eval_ds, return_dict=True, verbose=config.verbose)
    metrics = {k: float(v) for k, v in metrics.items()}
    check_finite_metrics(metrics, run_dir)
    with run_dir.output(FINAL_MODEL) as path:
        export_model(model, path)
    run_dir.log_event("end", step=final_step, ema=ema.ema_optimizer(model) is not None, **metrics)
    return TrainResult(run_dir.path, start_step, final_step, total_steps, resume, metrics, history, model)


def export_model(model: keras.Model, path: str) -> keras.Model:
    """Save the inference network: the main classifier only, without optimizer state, atomically.

    The auxiliary head only serves training, and the optimizer's slots (momentum, the
    averages) are in the checkpoints; what remains is a keras.applications-like model
    (one softmax output named "predictions") holding the weights the recipe evaluates.
    """
    inference = keras.Model(model.inputs, model.get_layer("predictions").output, name=model.name)
    with atomic_path(path) as temporary:
        inference.save(temporary)
    return inference


def _callbacks(model, run_dir, config, resume, total_steps, writes_logs=True) -> list[keras.callbacks.Callback]:
    callbacks: list[keras.callbacks.Callback] = []
    if any(layer.max_rate > 0 for layer in drop_path_layers(model)):
        callbacks.append(ScheduledDropPathCallback(total_steps))
    callbacks.append(TrainingStateLogger(run_dir, resume, total_steps))
    callbacks += ema.evaluation_callbacks(model)
    callbacks.append(DivergenceGuard(run_dir))  # before the checkpoint: a NaN step is never saved
    callbacks.append(CheckpointCallback(run_dir, config.save_every_steps, config.keep_checkpoints))
    if not writes_logs:  # a non-chief worker: the chief's logs hold the (all-reduced) metrics
        return callbacks
    callbacks.append(keras.callbacks.CSVLogger(run_dir.file(HISTORY), append=True))
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(run_dir.file(LOGS), write_graph=False))
    return callbacks


def _fit(model, run_dir, train_examples, plan, recipe, config, output_names, eval_ds, callbacks, step,
         steps_per_epoch, total_steps, distribute=lambda batches: batches) -> dict[str, list]:
    """Run `fit` until `total_steps` optimizer updates, first finishing an interrupted epoch after a resume.

    The step is the optimizer's iteration count: the schedules follow it and checkpoints
    record it. Under mixed precision, Keras' LossScaleOptimizer does not count the steps
    it skips (gradients overflowed and the loss scale was lowered), so a few more batches
    than `total_steps` may be run to apply `total_steps` updates.
    """
    history: dict[str, list] = {}
    while step < total_steps:
        epoch, offset = divmod(step, steps_per_epoch)
        if offset:
            print(f"Finishing epoch {epoch + 1} from step {step} ({steps_per_epoch - offset} steps left)")
        fit_history = model.fit(
            distribute(training_data(train_examples, plan, recipe, output_names, seed=config.seed + step)),
            initial_epoch=epoch,
            epochs=epoch + 1 if offset else recipe.epochs,
            steps_per_epoch=steps_per_epoch - offset,
            callbacks=callbacks,
            validation_data=eval_ds if config.eval_every_epochs else None,
            validation_freq=config.eval_every_epochs or 1,
            shuffle=False,  # the pipeline shuffles (tf.data)
            verbose=config.verbose,
        )
        for key, values in fit_history.history.items():
            history.setdefault(key, []).extend(values)
        previous, step = step, int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        if step == previous:
            raise ValueError(
                f"No optimizer update was applied in {steps_per_epoch - offset} batches from step {step}: under "
                "mixed precision every step was skipped as non-finite. The loss diverges; lower the learning rate"
            )
        if step < total_steps and ema.ema_optimizer(model) is not None:
            # fit() ended by copying the averages into the weights; training goes on from
            # the raw weights, which the checkpoint written at that epoch's end holds.
            run_dir.restore(model)
    return history
