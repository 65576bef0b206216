"""A run directory: its manifest, checkpoints that survive a kill, and the refusal to clobber.

Layout of `DIR`:

    run.json            the manifest: architecture (variant, genotype id), data (dataset,
                        splits, input shape), recipe, precision, initial weights
    checkpoints/ckpt-000001234.weights.h5
                        model weights + the optimizer's variables (iteration count, so the
                        learning-rate position; momentum/RMS slots; EMA averages; loss
                        scale) + ScheduledDropPath progress. Written atomically
                        (`nasnet_keras.fileio`), so a kill mid-write leaves the previous
                        one intact; a killed writer's partial is removed on the next save.
    events.jsonl        one line per start/resume, checkpoint and end
    history.csv, logs/  Keras' CSV log and TensorBoard events
    final.keras         the inference model: main classifier, no optimizer state, EMA
                        weights when the recipe averages (see `trainer.export_model`)

A directory that already holds a run is resumed only by the same run: any difference in
the manifest is an error that names both runs and changes nothing, unless `overwrite`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from typing import Any, Iterator

import keras

from nasnet_keras.checks import check_int
from nasnet_keras import fileio
from nasnet_keras.fileio import write_json
from nasnet_keras.model_files import weights_image
from nasnet_keras.training import checkpoint_faults
from nasnet_keras.training.divergence import check_finite_weights

MANIFEST = "run.json"
CHECKPOINTS = "checkpoints"
EVENTS = "events.jsonl"
HISTORY = "history.csv"
LOGS = "logs"
FINAL_MODEL = "final.keras"
MANIFEST_FORMAT = 1
# Manifest sections that must agree for a run to resume (others are informational).
COMPARED = ("model", "data", "recipe", "mixed_precision", "init_weights")
_CHECKPOINT = re.compile(r"^ckpt-(\d+)\.weights\.h5$")


def flatten_keys(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict as one level with dotted keys (`{"recipe": {"epochs": 3}}` -> `{"recipe.epochs": 3}`),
    so differences between two manifests name the field."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten_keys(item, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: value}


def manifest_differences(stored: dict, current: dict) -> list[str]:
    """`key: stored != current` for each compared manifest entry that differs."""
    old = flatten_keys({k: stored.get(k) for k in COMPARED})
    new = flatten_keys({k: json.loads(json.dumps(current.get(k))) for k in COMPARED})
    return [f"{key}: {old.get(key)!r} != {new.get(key)!r}" for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)]


def describe_manifest(manifest: dict) -> str:
    model, data = manifest.get("model") or {}, manifest.get("data") or {}
    genotype = f"{model.get('genotype_name') or ''} [{model.get('genotype_id')}]".strip()
    shape = "x".join(str(s) for s in data.get("input_shape") or [])
    recipe = (manifest.get("recipe") or {}).get("name")
    return f"variant {model.get('variant')!r} (genotype {genotype}) on {data.get('dataset')} {shape}, recipe {recipe!r}"


class RunDirectory:
    """The files of one training run; see the module docstring for the layout."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    # --- reading -----------------------------------------------------------------------
    def read_manifest(self) -> dict | None:
        path = self.file(MANIFEST)
        if not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as f:
                manifest = json.load(f)
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(
                f"{path} is not a readable run manifest ({error}); fix or remove it, or use --overwrite"
            ) from None
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(
                f"{path} is not a run manifest of format {MANIFEST_FORMAT}; use another directory or --overwrite"
            )
        return manifest

    def checkpoints(self) -> list[tuple[int, str]]:
        """(step, path) of every complete checkpoint, oldest first."""
        folder = self.file(CHECKPOINTS)
        if not os.path.isdir(folder):
            return []
        found = [(int(m.group(1)), os.path.join(folder, name))
                 for name in os.listdir(folder) if (m := _CHECKPOINT.match(name))]
        return sorted(found)

    def latest_checkpoint(self) -> tuple[int, str] | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def _owned_paths(self) -> list[str]:
        names = (MANIFEST, CHECKPOINTS, EVENTS, HISTORY, LOGS, FINAL_MODEL)
        return [self.file(name) for name in names if os.path.exists(self.file(name))]

    # --- the only-same-run rule ------------------------------------------------------------
    def check(self, manifest: dict, overwrite: bool = False) -> bool:
        """Whether this run can use the directory (True: it resumes a run). Writes nothing.

        Raises ValueError when the directory holds another run (or run files without a
        manifest) and `overwrite` is not set.
        """
        if overwrite:
            return False
        stored = self.read_manifest()
        if stored is None:
            leftovers = [p for p in self._owned_paths() if not p.endswith(LOGS)]
            if leftovers:
                raise ValueError(
                    f"{self.path} holds training files ({', '.join(map(os.path.basename, leftovers))}) but no "
                    f"{MANIFEST}, so it cannot be told whether they belong to this run. Nothing was changed; "
                    "use another --directory, or --overwrite to replace them"
                )
            return False
        differences = manifest_differences(stored, manifest)
        if differences:
            raise ValueError(
                f"{self.path} already holds another run: {describe_manifest(stored)}. This run is "
                f"{describe_manifest(manifest)}. Differences: {'; '.join(differences)}. Nothing was changed; "
                "use another --directory, or --overwrite to replace that run"
            )
        return self.latest_checkpoint() is not None

    # --- writing -------------------------------------------------------------------------
    def start(self, manifest: dict, overwrite: bool = False) -> None:
        """Create the directory (clearing this package's files first if `overwrite`) and the manifest."""
        if overwrite:
            for path in self._owned_paths():
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        os.makedirs(self.file(CHECKPOINTS), exist_ok=True)
        if self.read_manifest() is None:
            manifest = {**manifest, "format": MANIFEST_FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
            write_json(self.file(MANIFEST), manifest, sort_keys=True)

    @contextlib.contextmanager
    def output(self, name: str) -> Iterator[str]:
        """The path to write the run file `name` to (a non-chief worker gets a scratch path)."""
        yield self.file(name)

    def log_event(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        with open(self.file(EVENTS), "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def events(self) -> list[dict]:
        if not os.path.exists(self.file(EVENTS)):
            return []
        with open(self.file(EVENTS), encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def save(self, model: keras.Model, step: int, keep: int = 2) -> str:
        """Write checkpoint `step` atomically; keep the newest `keep` checkpoints.

        The file carries the genotype id (`model_files.stamp_weights`); it is built in memory and
        copied with plain Python I/O (`checkpoint_faults`), so a write that fails at any point
        (a full disk) removes its partial, keeps every earlier checkpoint and raises
        `checkpoint_faults.CheckpointWriteFailed` with the reason.
        """
        folder = self.file(CHECKPOINTS)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"ckpt-{step:09d}.weights.h5")
        checkpoint_faults.remove_partials(folder)  # of runs killed while writing
        image = weights_image(model)  # in memory: HDF5 never meets a full disk (checkpoint_faults)
        with checkpoint_faults.writing(self, path, step, len(image)) as temporary:
            fileio.copy_bytes(image, temporary)
        del image
        if keep > 0:
            for _, old in self.checkpoints()[:-keep]:
                os.remove(old)
        return path

    def restore(self, model: keras.Model, path: str | None = None) -> int:
        """Load a checkpoint (default: the latest) into `model` and its optimizer; returns the step."""
        if path is None:
            path = checkpoint_faults.newest_intact(self, model)
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # slots must exist to receive their values
        try:
            model.load_weights(path)
        except (ValueError, KeyError, OSError) as error:
            raise ValueError(f"Checkpoint {path} does not fit the model {model.name!r}: {error}") from None
        step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        match = _CHECKPOINT.match(os.path.basename(path))
        if match and int(match.group(1)) != step:
            # Keras only warns when an optimizer's variables do not match, and skips them.
            raise ValueError(
                f"Checkpoint {path} is at step {int(match.group(1))} but its optimizer state did not load into "
                f"the model's optimizer ({type(model.optimizer).__name__}, now at step {step}): it was written by a "
                "differently configured run"
            )
        return step


class CheckpointCallback(keras.callbacks.Callback):
    """Saves a checkpoint at every multiple of `every_steps` optimizer steps and at each epoch end.

    Steps are read from the optimizer's iteration count, so the cadence is the same in
    a resumed run and with `steps_per_execution > 1`.
    """

    def __init__(self, run_dir: RunDirectory, every_steps: int | None = None, keep: int = 2):
        super().__init__()
        check_int("every_steps", every_steps, minimum=1, allow_none=True)
        self.run_dir = run_dir
        self.every_steps = every_steps
        self.keep = keep
        self._last_saved = None

    def _step(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_begin(self, logs=None):
        self._last_saved = self._step()

    def _save(self, step: int) -> None:
        check_finite_weights(self.model, self.run_dir)  # NaN weights never replace a good checkpoint
        self.run_dir.save(self.model, step, self.keep)
        self.run_dir.log_event("checkpoint", step=step)
        self._last_saved = step

    def on_train_batch_end(self, batch, logs=None):
        if self.every_steps:
            step = self._step()
            if step // self.every_steps > self._last_saved // self.every_steps:
                self._save(step)

    def on_epoch_end(self, epoch, logs=None):
        step = self._step()
        if step != self._last_saved:
            self._save(step)
