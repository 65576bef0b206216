"""`export()`: one SavedModel that TF Serving serves and TF Hub / tf_keras code fine-tunes.

Layout (TF Serving's): `DIRECTORY/<version>/{saved_model.pb, variables/, model_card.json}`.
TF Serving watches DIRECTORY and loads any integer-named directory that appears, so a
version must appear complete or not at all: the SavedModel is written into a hidden
temporary directory beside it (same file system, a name TF Serving ignores) and renamed
into place only when everything, card included, is written. A failed or interrupted
export removes its temporary directory; an existing version is replaced only with
`overwrite=True`, and even then the old one is moved aside until the new one is in place
(`nasnet_keras.fileio.atomic_directory`). An export killed with SIGKILL leaves its hidden
partial behind; the next export into the same directory deletes the partials of dead
writers (never a live writer's: `fileio.remove_stale_partials`).
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from nasnet_keras.checks import check_choice, check_int
from nasnet_keras.fileio import atomic_directory, remove_stale_partials
from savedmodels import ema_export as ema_lib
from savedmodels import introspect, model_card, reusable
from savedmodels import signatures as sigs

KINDS = ("auto",) + reusable.KINDS


@dataclasses.dataclass(frozen=True)
class ExportResult:
    path: str  # the version directory DIRECTORY/<version>
    version: int
    card: dict


def export(
    model,
    directory,
    version: int | None = None,
    *,
    overwrite: bool = False,
    kind: str = "auto",
    class_names: list[str] | None = None,
    top_k: int = 5,
    ema="auto",
    variant: str | None = None,
    source: str | None = None,
    preprocessing: str = "scale",
    frozen_batchnorm: bool = False,
) -> ExportResult:
    """Export a NASNet Keras model to `directory/<version>/` (TF Serving layout).

    Args:
        model: a built functional nasnet_keras model with a static (H, W, 3) input.
        directory: the model's base directory (created if missing); TF Serving's `--model_base_path`.
        version: positive integer; default: one more than the highest existing version (1 if none).
        overwrite: replace an existing version directory (otherwise that is an error).
        kind: "classifier" (`__call__` returns the classifier output), "backbone" (`__call__`
            returns feature maps by level) or "auto" (classifier when the model has a head).
        class_names: names of the classifier's outputs, written to the model card.
        top_k: how many best classes `serving_default` / `serving_bytes` return.
        ema: export the optimizer's moving averages: "auto" (if the model's optimizer has
            them), True (required) or False (raw weights).
        variant, source: what the model is and where it came from, for the model card.
        preprocessing: what the network was trained on, applied in the serving signatures:
            "scale" (x / 127.5 - 1: keras.applications, the ImageNet recipe) or "standardize"
            (per-image whitening: the CIFAR recipe, search children, the demo's model).
        frozen_batchnorm: `__call__(training=True)` normalises with the moving statistics and
            leaves them unchanged (scale/offset still train): for fine-tuning with batches
            too small for batch statistics, such as detection's (see reusable.py).

    Returns:
        ExportResult with the version directory, the version and the model card.
    """
    facts = introspect.describe(model)
    variant = variant if variant is not None else getattr(model, "variant", None)
    if preprocessing not in sigs.PREPROCESSING:
        raise ValueError(f"`preprocessing` must be one of {sigs.PREPROCESSING}. Received: preprocessing={preprocessing!r}")
    facts = dataclasses.replace(facts, preprocessing=preprocessing)
    kind = _resolve_kind(kind, facts)
    check_int("top_k", top_k, minimum=1)
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if facts.num_classes is None:
            raise ValueError(f"`class_names` name a classifier's outputs, but model {model.name!r} has no head")
        if len(class_names) != facts.num_classes:
            raise ValueError(
                f"`class_names` must name each of the model's {facts.num_classes} outputs. "
                f"Received {len(class_names)} names"
            )
    averages = ema_lib.resolve(model, ema)

    directory, version, final = version_directory(directory, version, overwrite)

    created_base = not os.path.exists(directory)
    os.makedirs(directory, exist_ok=True)
    remove_stale_partials(directory)  # of exports killed (SIGKILL) before they finished
    try:
        with atomic_directory(final, overwrite=overwrite) as partial:
            with ema_lib.swapped_in(averages):
                signature_specs = _write_savedmodel(facts, kind, top_k, partial,
                                                   frozen_batchnorm=bool(frozen_batchnorm))
            weights = "raw" if averages is None else "ema"
            card = model_card.build(
                facts, kind, signature_specs, variant=variant, class_names=class_names, top_k=top_k,
                weights=weights, source=source,
            )
            card["frozen_batchnorm"] = bool(frozen_batchnorm)
            if averages is not None:
                optimizer = ema_lib.ema_optimizer(model)
                card["ema_momentum"] = float(optimizer.ema_momentum)
                card["ema_steps"] = int(optimizer.iterations.numpy())
            model_card.write(card, partial)
    except FileExistsError:
        raise ValueError(f"Version directory {final!r} appeared during the export; not overwriting it") from None
    except BaseException:
        if created_base and os.path.isdir(directory) and not os.listdir(directory):
            os.rmdir(directory)
        raise
    return ExportResult(final, version, card)


def _write_savedmodel(facts, kind, top_k, path, frozen_batchnorm=False) -> dict:
    """Trace the reusable root and the signatures, save them to `path`; returns the signatures' specs.

    The one slow step of an export, kept apart so that layout tests can replace it.
    """
    root = reusable.ReusableModule(facts, kind, frozen_batchnorm=frozen_batchnorm)
    serving = sigs.build(facts, top_k=top_k)
    tf.saved_model.save(root, path, signatures=serving)
    return sigs.describe(serving)


def _resolve_kind(kind, facts):
    check_choice("kind", kind, KINDS)
    if kind == "auto":
        return reusable.CLASSIFIER if facts.classifier is not None else reusable.BACKBONE
    return kind


def versions(directory) -> list[int]:
    """The integer version directories under `directory`, ascending (what TF Serving would see)."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return []
    return sorted(int(name) for name in os.listdir(directory)
                  if name.isdigit() and os.path.isdir(os.path.join(directory, name)))


def next_version(directory) -> int:
    existing = versions(directory)
    return existing[-1] + 1 if existing else 1


def version_directory(directory, version, overwrite: bool) -> tuple[str, int, str]:
    """(absolute base directory, version, version directory) of an export, checked before any work:
    the base must be a directory if it exists, and an existing version is an error unless `overwrite`.
    Every export format shares this rule (TF Serving's, OpenVINO Model Server's and Triton's layout)."""
    directory = os.path.abspath(os.fspath(directory))
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(f"The export directory {directory!r} exists and is not a directory")
    version = _resolve_version(directory, version)
    final = os.path.join(directory, str(version))
    if os.path.exists(final) and not overwrite:
        raise ValueError(
            f"Version directory {final!r} already exists; pass overwrite=True (CLI: --overwrite) to replace it, "
            f"or choose another version (next free: {next_version(directory)})"
        )
    return directory, version, final


def _resolve_version(directory, version):
    if version is None:
        return next_version(directory)
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    return check_int("version", version, minimum=1, hint=" (TF Serving serves integer-named directories)")
