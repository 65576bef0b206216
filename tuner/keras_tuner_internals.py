"""Every use of keras-tuner's private API (`keras_tuner.src`, private Oracle attributes), in one place.

keras-tuner exports no public way to ask whether this process is a distributed chief or
worker, where an oracle's project directory is, or which trials it will re-run, and no
public API for its distributed mode: the gRPC service, the chief's servicer and the
worker's client live under `keras_tuner.src.distribute`, and the bookkeeping that a
fault-tolerant chief must read or repair (ongoing trials, the retry queue, the run counts)
is private attributes of `keras_tuner.Oracle`. Each is read here and nowhere else, so a
keras-tuner upgrade that moves them breaks this module alone, and
`tests/tuner/test_keras_tuner_internals.py` fails loudly naming what changed.

Checked against keras-tuner 1.4.8 (setup.py pins `keras-tuner==1.4.*`).

    keras_tuner.src.distribute.utils.has_chief_oracle / is_chief_oracle
    keras_tuner.src.distribute.oracle_chief.OracleServicer, oracle_client.OracleClient
    keras_tuner.src.protos.get_service / get_service_grpc / get_proto (the Trial message: `trial_message`)
    Oracle._set_project_dir()  (what a Tuner calls to give its oracle a directory:
                               `set_project_dir`, used by tuner.benchmark_tabular's tunerless search)
    Oracle._project_dir        (property: <directory>/<project_name>, created on access: `project_dir`)
    Oracle._get_oracle_fname() (<project_dir>/oracle.json: `oracle_file`)
    Oracle._get_trial_dir()    (<project_dir>/trial_<id>, created on call: `trial_dir`, used by
                               tuner.state_journal to write trial.json)
    Oracle._retry_queue        (trial ids keras-tuner will run again, list, popped from the end:
                               `retry_queue`, read by the chief and by the reward cache's and
                               evolution's repair after a kill)
    Oracle._run_times          (how often each trial has ended: the retry counter: `run_count`)
    Oracle._tried_so_far       (the set of value hashes that get_state lists: shared, not copied,
                               by `state_sharing_tried_hashes`, the state journal's read)
    Oracle._save_trial         (writes trial.json on every create/update/end: overridden by
                               tuner.state_journal (atomic write), replaced with a no-op on one
                               instance by `skip_state_files`, with Oracle.save)
    Oracle._check_consecutive_failures (overridden by tuner.state_journal: checks the tail only)
    keras_tuner.src.config.DEBUG (print each failed trial's traceback to stderr; default True:
                               `failed_trial_tracebacks`)
    HyperParameters._hps, _space (the space's registry: filled by `FastCopySpaceMixin`'s copy)

The two overrides in tuner.state_journal (`_save_trial`, `_check_consecutive_failures`) are
hooks keras-tuner calls; the test checks that keras-tuner still has and calls them.
"""

from __future__ import annotations

import contextlib

import keras_tuner
from keras_tuner.src import config as _config
from keras_tuner.src import protos as _protos
from keras_tuner.src.distribute import oracle_chief as _oracle_chief
from keras_tuner.src.distribute import oracle_client as _oracle_client
from keras_tuner.src.distribute import utils as _distribute_utils

CHECKED_VERSION = "1.4.8"
KERAS_TUNER_VERSION = keras_tuner.__version__

# The gRPC service of keras-tuner's chief: request/response messages and the stub/servicer.
service_messages = _protos.get_service()
service_grpc = _protos.get_service_grpc()



def trial_message():
    """An empty `Trial` proto message (keras-tuner's `Trial.to_proto` builds the same type)."""
    return _protos.get_proto().Trial()


# The chief's servicer (one method per RPC, each calling the oracle) and the worker's client.
OracleServicer = _oracle_chief.OracleServicer
OracleClient = _oracle_client.OracleClient

# The private `keras_tuner.Oracle` attributes read or repaired by the fault-tolerant chief
# (tuner/distributed/chief.py) and the functions below. Listed so the test can check that
# each still exists.
ORACLE_PRIVATE_ATTRIBUTES = ("_retry_queue", "_run_times", "ongoing_trials", "tuner_ids", "end_order",
                             "trials", "max_retries_per_trial", "_get_oracle_fname", "_set_project_dir",
                             # overridden by tuner.state_journal.StateJournalMixin
                             "_save_trial", "_get_trial_dir", "_check_consecutive_failures",
                             "max_consecutive_failed_trials", "start_order",
                             # read without a copy by state_sharing_tried_hashes
                             "_tried_so_far")


class _FastCopyHyperParameters(keras_tuner.HyperParameters):
    """keras-tuner's `HyperParameters` whose `copy()` rebuilds each hyperparameter directly.

    keras-tuner's own copy goes through Keras' generic deserializer, which inspects each
    class's signature per hyperparameter; `Oracle.create_trial` copies the whole space for
    every trial. For the 50 Choices of the B=5 search space that was 0.85 ms of the chief's
    CPU per trial; building each one with its own `from_config` takes 0.16 ms and gives the
    same space (same classes, names, values, conditions).
    """

    def copy(self):
        new = _FastCopyHyperParameters()
        for hp in self.space:
            clone = type(hp).from_config(hp.get_config())
            new._hps[clone.name].append(clone)
            new._space.append(clone)
        new.values = dict(self.values)
        return new


def fast_copying(hyperparameters) -> keras_tuner.HyperParameters:
    """The same space and values as `hyperparameters`, with the fast `copy()` above."""
    if isinstance(hyperparameters, _FastCopyHyperParameters):
        return hyperparameters
    return _FastCopyHyperParameters.copy(hyperparameters)


class FastCopySpaceMixin:
    """Put in an Oracle subclass's bases: its space copies fast in every `create_trial`.

    keras-tuner builds the space in `__init__` and rebuilds it as a plain `HyperParameters`
    in `set_state` (a resume), so both are wrapped.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hyperparameters = fast_copying(self.hyperparameters)

    def set_state(self, state):
        super().set_state(state)
        self.hyperparameters = fast_copying(self.hyperparameters)


def has_chief_oracle() -> bool:
    """True in any process of a distributed search (KERASTUNER_ORACLE_IP/_PORT are set)."""
    return _distribute_utils.has_chief_oracle()


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


def trial_dir(oracle, trial_id: str) -> str:
    """The directory of one trial's files (`<project_dir>/trial_<id>`), created if missing."""
    return oracle._get_trial_dir(trial_id)


def state_sharing_tried_hashes(oracle) -> dict:
    """`oracle.get_state()`, but with "tried_so_far" as the oracle's own set, not a list copy.

    keras-tuner's `Oracle.get_state` copies its set of value hashes (one per trial) into a
    list on every call, and the state journal reads the state on every save: at 15,000
    trials that copy was most of the journal's growth per call. The set is the oracle's
    live one, to read under the oracle's lock before its next change (`list()` of it is
    exactly what `get_state` holds).
    """
    tried = oracle._tried_so_far
    oracle._tried_so_far = ()
    try:
        state = oracle.get_state()
    finally:
        oracle._tried_so_far = tried
    state["tried_so_far"] = tried
    return state


def skip_state_files(oracle) -> None:
    """Turn off this oracle's writes of oracle.json and each trial.json (one instance only).

    For a search that is never resumed, e.g. a tabular benchmark whose trials are table
    lookups: keras-tuner writes both files on every create, update and end of a trial, and
    has no switch for it.
    """
    oracle.save = lambda: None
    oracle._save_trial = lambda trial: None


def retry_queue(oracle) -> list:
    """The trial ids keras-tuner will run again (the live list: removing an id cancels its re-run)."""
    return oracle._retry_queue


def run_count(oracle, trial_id: str) -> int:
    """How many times `trial_id` has ended so far (keras-tuner's retry counter)."""
    return int(oracle._run_times[trial_id])


@contextlib.contextmanager
def failed_trial_tracebacks(shown: bool):
    """Whether keras-tuner prints each failed trial's traceback to stderr, within the block.

    The traceback is kept in the trial's `message` (trial.json) either way; a command that
    logs one line per failed trial and reports the first failure's reason turns them off
    unless the user asked for tracebacks (`--debug`).
    """
    previous = _config.DEBUG
    _config.DEBUG = bool(shown)
    try:
        yield
    finally:
        _config.DEBUG = previous
