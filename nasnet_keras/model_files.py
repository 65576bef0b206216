"""Weights and model files that say what they are: read, or refused with the reason.

Keras loads a `.weights.h5` file into any model whose variables have the same shapes in
the same order. Two NASNet genotypes that differ only in weight-free operations (a max
pool where the other has an average pool) have exactly that, so weights trained for one
load silently into the other and the result is wrong without a word. The weights files
this package writes therefore carry the genotype's id as an HDF5 attribute of the file
(`stamp_weights`), and `check_weights` refuses to load them into a model whose cells
have another genotype, naming both. Files without the attribute (Keras' own, older
checkpoints) are loaded as before.

A truncated or foreign file is reported as such (`'PATH' is not a readable HDF5 weights
file`), and `load_keras_model` says "not a .keras archive" for a corrupt `.keras` file
instead of Keras' "File not found".

`weights_image` builds a stamped `.weights.h5` file in memory, so that HDF5 never writes to
a disk that may fill up (see the function).
"""

from __future__ import annotations

import io
import os
import zipfile

GENOTYPE_ATTRIBUTE = "nasnet_keras.genotype_id"
MODEL_ATTRIBUTE = "nasnet_keras.model_name"

class UnreadableWeightsError(ValueError):
    """A weights file that cannot be opened as HDF5 (truncated, empty, another format)."""


__all__ = ["UnreadableWeightsError", "genotype_id_of", "stamp_weights", "weights_image", "check_weights", "weights_genotype_id", "load_keras_model"]


def genotype_id_of(model) -> str | None:
    """The id of the genotype of `model`'s NASNet cells (None for a model without them)."""
    from nasnet_keras.cells import NASNetCell
    from nasnet_keras.genotype import Genotype

    from nasnet_keras.layer_tree import walk

    cells = [layer for layer in walk(model) if isinstance(layer, NASNetCell)]
    normal = next((c.genotype for c in cells if c.genotype.cell_type == "normal"), None)
    reduction = next((c.genotype for c in cells if c.genotype.cell_type == "reduction"), None)
    if normal is None or reduction is None:
        return None
    return Genotype(normal, reduction).id


def _open(path, mode: str = "r"):
    import h5py

    if isinstance(path, io.BytesIO):  # an in-memory image (`weights_image`)
        return h5py.File(path, mode)
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(21, "Is a directory, not a weights file", path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such weights file", path)
    try:
        return h5py.File(path, mode)
    except OSError as error:
        raise UnreadableWeightsError(
            f"{path!r} is not a readable HDF5 weights file ({str(error).splitlines()[0]}): it is truncated or "
            "of another format; copy it again or use an intact checkpoint"
        ) from None


def stamp_weights(path, model) -> None:
    """Record `model`'s genotype id (and name) in the weights file `path` (or in-memory image), just written by Keras."""
    genotype_id = genotype_id_of(model)
    with _open(path, "a") as f:
        if genotype_id is not None:
            f.attrs[GENOTYPE_ATTRIBUTE] = genotype_id
        f.attrs[MODEL_ATTRIBUTE] = str(getattr(model, "name", ""))


class _WeightsImage(io.BytesIO):
    """An in-memory `.weights.h5` file that `Model.save_weights` accepts.

    Keras' HDF5 store writes to an `io.BytesIO` as well as to a path; `save_weights` checks
    only that `str(filepath)` ends in `.weights.h5`, which this name provides.
    """

    def __str__(self) -> str:
        return "in-memory.weights.h5"


def weights_image(model) -> bytes:
    """`model`'s weights as the bytes of a stamped `.weights.h5` file, built in memory.

    Why in memory: HDF5 that meets a full disk in the middle of a file leaves its library
    in a state that crashes the interpreter (SIGSEGV at exit, after a traceback), and the
    disk can fill after any free-space check. Built here, the file never touches the disk
    through HDF5; the caller writes the bytes with ordinary Python I/O
    (`fileio.copy_bytes`), whose ENOSPC is a plain OSError at any point. The cost is one
    copy of the checkpoint in host memory while it is written.
    """
    image = _WeightsImage()
    model.save_weights(image, overwrite=True)
    stamp_weights(image, model)
    data = image.getvalue()
    if not data.startswith(b"\x89HDF"):
        raise RuntimeError("Keras wrote no HDF5 image into memory (its save_weights no longer accepts a BytesIO)")
    return data


def weights_genotype_id(path: str) -> str | None:
    """The genotype id stamped in a weights file, or None (not stamped); raises ValueError if unreadable."""
    with _open(path) as f:
        value = f.attrs.get(GENOTYPE_ATTRIBUTE)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return None if value is None else str(value)


def check_weights(model, path: str) -> None:
    """Raise ValueError if `path` is unreadable or was written for another genotype than `model`'s."""
    stored = weights_genotype_id(path)
    current = genotype_id_of(model)
    if stored is not None and current is not None and stored != current:
        raise ValueError(
            f"Weights file {os.fspath(path)!r} was written for genotype [{stored}], but model {model.name!r} has "
            f"genotype [{current}]: the weights belong to another architecture. Build the model from the genotype "
            "the weights were trained with (its JSON), or pass the weights trained for this one"
        )


def load_keras_model(path: str, **kwargs):
    """`keras.saving.load_model` with a reason for a missing, misplaced or corrupt `.keras` file."""
    import keras

    import nasnet_keras  # noqa: F401  (registers the custom layers a .keras file refers to)

    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(21, "Is a directory, not a .keras file", path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such model file", path)
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} is not a .keras archive (not a zip file: truncated or of another format); "
            "save the model again with model.save(path)"
        )
    try:
        return keras.saving.load_model(path, **kwargs)
    except (zipfile.BadZipFile, OSError, KeyError, EOFError) as error:
        raise ValueError(f"{path!r} is a damaged .keras archive ({type(error).__name__}: {error}); "
                         "save the model again") from None
