"""Every use of keras-tuner's private API, in one place.

Checked against keras-tuner 1.4.8 (setup.py pins `keras-tuner==1.4.*`). keras-tuner exports
no public way to ask whether this process is a distributed chief or worker, where an
oracle's project directory is, or which trials it will re-run, but the PPO oracle's resume
needs all three. Each is read here and nowhere else, so a keras-tuner upgrade that moves
them breaks this module alone, and `tests/tuner/test_keras_tuner_internals.py` fails loudly
naming what changed.

    keras_tuner.src.distribute.utils.has_chief_oracle / is_chief_oracle
    Oracle._set_project_dir()  (what a Tuner calls to give its oracle a directory)
    Oracle._project_dir        (property: <directory>/<project_name>, created on access)
    Oracle._get_oracle_fname() (<project_dir>/oracle.json)
    Oracle._retry_queue        (trial ids keras-tuner will run again, list, popped from the end)
"""

from __future__ import annotations

from keras_tuner.src.distribute import utils as _distribute_utils

CHECKED_VERSION = "1.4.8"


def is_chief_oracle() -> bool:
    """True in the chief process of a distributed search (it serves the oracle, trains nothing)."""
    return _distribute_utils.is_chief_oracle()


def is_distributed_worker() -> bool:
    """True in a keras-tuner worker process (distributed search, not the chief)."""
    return _distribute_utils.has_chief_oracle() and not _distribute_utils.is_chief_oracle()


def set_project_dir(oracle, directory: str, project_name: str) -> None:
    """Point a stand-alone oracle (one without a tuner, as in tests) at `<directory>/<project_name>`."""
    oracle._set_project_dir(directory, project_name)


def project_dir(oracle) -> str:
    """The oracle's project directory (`<directory>/<project_name>`)."""
    return oracle._project_dir


def oracle_file(oracle) -> str:
    """The path of the oracle's own state file (`oracle.json`)."""
    return oracle._get_oracle_fname()


def retry_queue(oracle) -> list:
    """The trial ids keras-tuner will run again (the live list: removing an id cancels its re-run)."""
    return oracle._retry_queue
