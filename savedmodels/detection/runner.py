"""Train, evaluate, predict and export a detector with Model Garden's own machinery.

* `train` / `evaluate`: `official.core.train_lib.run_experiment` (orbit controller,
  checkpoints in the model directory, restored on start, so running `train` again
  resumes; Model Garden's `COCOEvaluator` (pycocotools) for the metrics).
* `predict` and `export`: Model Garden's detection export module
  (`official.vision.serving.detection.DetectionModule`): the same preprocessing, model
  call and NMS that a served model runs.

A model directory holds Model Garden's checkpoints and summaries, plus `nasnet_detect.json`
(the experiment name and its full params, so eval / predict / export rebuild the same
detector), `backbone/1/` (the backbone SavedModel exported for this run) and
`eval_metrics.json` (the last evaluation).
"""

from __future__ import annotations

import logging
import math
import os

import tensorflow as tf
from official.core import exp_factory, task_factory, train_lib
from official.vision.serving import detection as detection_serving
from official.vision.serving import export_saved_model_lib

from nasnet_keras import checks, fileio
from savedmodels.detection import backbone as backbone_lib
from savedmodels.detection import experiments  # noqa: F401  (registers the experiments)
from savedmodels.detection import records

log = logging.getLogger(__name__)

RUN_CARD = "nasnet_detect.json"
METRICS = "eval_metrics.json"
REFERENCE_BATCH = 64  # fasterrcnn_resnetfpn_coco's batch for its learning rate 0.12
REFERENCE_LR = 0.12


def configure(experiment: str, data_dir: str, *, steps: int = 1000, batch_size: int = 2, eval_batch_size: int = 1,
              input_size: int | None = None, learning_rate: float | None = None, overrides: dict | None = None):
    """Params of `experiment` for the dataset in `data_dir`, sized for `steps` steps of `batch_size`.

    The learning rate follows Model Garden's recipe scaled linearly with the batch
    (0.12 at 64), its step boundaries at the same fractions of the run (2/3, 8/9), warm-up
    over the first 5% of steps. `overrides` is a nested dict applied last (strictly: an
    unknown key is an error).
    """
    try:
        params = exp_factory.get_exp_config(experiment)
    except LookupError:
        raise ValueError(f"Unknown experiment {experiment!r}. Ours: {', '.join(experiments.EXPERIMENTS)}; "
                         "Model Garden's include fasterrcnn_resnetfpn_coco") from None
    checks.check_int("steps", steps, minimum=1)
    checks.check_int("batch_size", batch_size, minimum=1)
    checks.check_int("eval_batch_size", eval_batch_size, minimum=1)
    card = records.read_dataset(data_dir)
    task = params.task
    if input_size is not None:
        checks.check_int("input_size", input_size, minimum=64, hint=" (a multiple of 64: the FPN's top stride)")
        if input_size % 64:
            raise ValueError(f"`input_size` must be a multiple of 64 (the FPN's top stride). Received: "
                             f"input_size={input_size}")
        task.model.input_size = [input_size, input_size, 3]
    task.model.num_classes = card["num_classes"]
    task.init_checkpoint = None
    task.annotation_file = None
    params.runtime.mixed_precision_dtype = "float32"  # the defaults are bfloat16 (TPU); CPUs want float32
    task.train_data.input_path = card["files"]["train"]
    task.train_data.global_batch_size = batch_size
    task.train_data.shuffle_buffer_size = 256
    task.train_data.dtype = "float32"
    validation = card["splits"].get("validation")
    if validation:
        task.validation_data.input_path = card["files"]["validation"]
        task.validation_data.global_batch_size = eval_batch_size
        task.validation_data.drop_remainder = False
        task.validation_data.dtype = "float32"
        params.trainer.validation_steps = math.ceil(validation["images"] / eval_batch_size)
    params.trainer.train_steps = steps
    loop = min(steps, 50)
    params.trainer.steps_per_loop = loop
    params.trainer.summary_interval = loop
    params.trainer.checkpoint_interval = loop
    params.trainer.validation_interval = steps
    lr = learning_rate if learning_rate is not None else REFERENCE_LR * batch_size / REFERENCE_BATCH
    optimizer = params.trainer.optimizer_config
    optimizer.learning_rate.stepwise.boundaries = [max(1, steps * 2 // 3), max(2, steps * 8 // 9)]
    optimizer.learning_rate.stepwise.values = [lr, lr / 10, lr / 100]
    optimizer.warmup.linear.warmup_steps = max(1, steps // 20)
    optimizer.warmup.linear.warmup_learning_rate = lr / 20
    if overrides:
        params.override(overrides, is_strict=True)
    params.validate()
    return params


def _prepare_backbone(params, model_dir):
    """Export the run's backbone SavedModel once (into the model dir) unless one is given."""
    if params.task.model.backbone.type != backbone_lib.NAME:
        return
    cfg = params.task.model.backbone.nasnet
    if cfg.saved_model:
        return
    target = os.path.join(model_dir, "backbone")
    path = os.path.join(target, "1")
    if not os.path.isdir(path):
        backbone_lib.export_backbone(cfg, params.task.model.input_size[:2], directory=target)
    cfg.saved_model = path


def save_run(params, experiment, model_dir):
    fileio.write_json(os.path.join(model_dir, RUN_CARD), {"experiment": experiment, "params": params.as_dict()})


def load_run(model_dir):
    """(experiment, params) of the run in `model_dir`."""
    path = os.path.join(model_dir, RUN_CARD)
    if not os.path.isfile(path):
        raise ValueError(f"{model_dir!r} holds no detection run ({RUN_CARD} missing); train one with "
                         "`nasnet detect train --model-dir ...`")
    from savedmodels.detection.coco import load_json

    card = load_json(path)
    params = exp_factory.get_exp_config(card["experiment"])
    params.override(card["params"], is_strict=False)
    return card["experiment"], params


def _run(params, model_dir, mode):
    """Model Garden's experiment runner in `mode`; returns (model, COCO metrics of its evaluation).

    'train_and_post_eval' trains, then evaluates once; 'eval' restores the latest
    checkpoint and evaluates (the runner's own `run()` returns no metrics in that mode, so
    its controller is asked directly).
    """
    strategy = tf.distribute.get_strategy()
    with strategy.scope():
        task = task_factory.get_task(params.task, logging_dir=model_dir)
    experiment = train_lib.OrbitExperimentRunner(distribution_strategy=strategy, task=task, mode=mode,
                                                 params=params, model_dir=model_dir)
    if mode == "eval":
        with strategy.scope():
            logs = experiment.controller.evaluate(steps=params.trainer.validation_steps)
        return experiment.trainer.model, _metrics(logs)
    _create_optimizer_slots(experiment.trainer, strategy)
    model, logs = experiment.run()
    return model, _metrics(logs)


def _create_optimizer_slots(trainer, strategy):
    """Create the optimizer's variables (momentum slots, hyperparameters) before the first step.

    Left to the first train step, they are created inside Model Garden's traced train loop,
    and a `tf.function` that creates variables is traced twice (once creating them, once
    without): the whole detector's forward and backward graph again, a large part of a short
    run's time. The checkpoint has been restored by now; slots created here get their saved
    values through the optimizer's deferred slot restoration, as they would in the step.
    """
    create = getattr(trainer.optimizer, "_create_all_weights", None)  # tf_keras legacy optimizers: Model
    if create is None:  # Garden's default; idempotent. Others create their variables in the first step.
        return
    with strategy.scope():
        create(trainer.model.trainable_variables)


def _metrics(logs) -> dict:
    out = {}
    for key, value in (logs or {}).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[key] = number
    return out


def train(params, experiment, model_dir, *, evaluate=True, return_model=False):
    """Train (resuming from the latest checkpoint in `model_dir`); returns the final COCO metrics
    (and the trained tf_keras model with `return_model`)."""
    os.makedirs(model_dir, exist_ok=True)
    fileio.remove_stale_partials(model_dir)
    _prepare_backbone(params, model_dir)
    save_run(params, experiment, model_dir)
    has_validation = bool(params.task.validation_data.input_path)
    model, metrics = _run(params, model_dir, "train_and_post_eval" if evaluate and has_validation else "train")
    if metrics:
        fileio.write_json(os.path.join(model_dir, METRICS), metrics)
    return (metrics, model) if return_model else metrics


def evaluate(model_dir, *, data_dir: str | None = None, eval_batch_size: int | None = None) -> dict:
    """COCO metrics of the latest checkpoint in `model_dir` (on `data_dir`'s validation split if given)."""
    _, params = load_run(model_dir)
    if data_dir is not None:
        card = records.read_dataset(data_dir)
        if "validation" not in card["files"]:
            raise ValueError(f"Dataset {data_dir!r} has no validation split")
        params.task.validation_data.input_path = card["files"]["validation"]
        batch = eval_batch_size or params.task.validation_data.global_batch_size
        params.task.validation_data.global_batch_size = batch
        params.trainer.validation_steps = math.ceil(card["splits"]["validation"]["images"] / batch)
    if not params.task.validation_data.input_path:
        raise ValueError("No validation data: pass --data with a validation split")
    if tf.train.latest_checkpoint(model_dir) is None:
        raise ValueError(f"No checkpoint in {model_dir!r} to evaluate")
    _, metrics = _run(params, model_dir, "eval")
    fileio.write_json(os.path.join(model_dir, METRICS), metrics)
    return metrics


class DetectorModule(detection_serving.DetectionModule):
    """Model Garden's detection export module, plus a float-pixel signature.

    `image_tensor` (uint8) and `image_bytes` are Model Garden's; `image_float` feeds float32
    RGB pixels 0..255 (any size) through the same `inference_from_image_tensors` (whose
    preprocessing casts to float first), for clients that send float arrays.
    """

    FLOAT = "image_float"

    def get_inference_signatures(self, function_keys):
        keys = dict(function_keys)
        float_name = keys.pop(self.FLOAT, None)
        signatures = super().get_inference_signatures(keys)
        if float_name:
            spec = tf.TensorSpec([self._batch_size, None, None, self._num_channels], tf.float32, name=self._input_name)
            signatures[float_name] = self.inference_from_image_tensors.get_concrete_function(spec)
        return signatures


SIGNATURES = {"image_tensor": "serving_default", "image_bytes": "serving_bytes", DetectorModule.FLOAT: "serving_float"}


def detector_module(params, batch_size=None, model=None):
    """Model Garden's export module for `params` (building the model unless one is given)."""
    size = params.task.model.input_size[:2]
    return DetectorModule(params=params, batch_size=batch_size, input_image_size=list(size), input_type="image_tensor",
                          num_channels=3, model=model)


def export(model_dir, export_dir, *, overwrite=False, checkpoint: str | None = None) -> str:
    """Write a TF Serving SavedModel of the whole detector to `export_dir` (atomically)."""
    _, params = load_run(model_dir)
    checkpoint = checkpoint or tf.train.latest_checkpoint(model_dir)
    if checkpoint is None:
        raise ValueError(f"No checkpoint in {model_dir!r} to export")
    if os.path.lexists(export_dir) and not overwrite:
        raise ValueError(f"Export directory {export_dir!r} already exists; pass --overwrite to replace it")
    module = detector_module(params)
    with fileio.atomic_directory(export_dir, overwrite=overwrite) as partial:
        os.rmdir(partial)  # export_inference_graph creates it
        export_saved_model_lib.export_inference_graph(
            input_type="image_tensor", batch_size=None, input_image_size=list(params.task.model.input_size[:2]),
            params=params, checkpoint_path=checkpoint, export_dir=partial, export_module=module,
            function_keys=SIGNATURES)
    return export_dir


def restored_module(model_dir, checkpoint: str | None = None):
    _, params = load_run(model_dir)
    checkpoint = checkpoint or tf.train.latest_checkpoint(model_dir)
    if checkpoint is None:
        raise ValueError(f"No checkpoint in {model_dir!r}")
    module = detector_module(params, batch_size=1)
    tf.train.Checkpoint(model=module.model).read(checkpoint).expect_partial()
    return module, params


def detect(module, image) -> dict:
    """Detections on one uint8 RGB image [H, W, 3], boxes [ymin, xmin, ymax, xmax] in its pixels."""
    batch = tf.convert_to_tensor(image[None], tf.uint8)
    outputs = module.inference_from_image_tensors(batch)
    _, _, image_info = module.preprocess(batch)
    scale = tf.tile(image_info[:, 2, :], [1, 2])[:, None, :]  # model input -> original pixels
    count = int(outputs["num_detections"][0])
    return {"boxes": (outputs["detection_boxes"] / scale)[0, :count].numpy(),
            "scores": outputs["detection_scores"][0, :count].numpy(),
            "classes": outputs["detection_classes"][0, :count].numpy().astype(int)}
