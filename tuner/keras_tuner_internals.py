"""Every use of keras-tuner's private modules (`keras_tuner.src`), fenced in one place.

keras-tuner exports no public API for its distributed mode: the gRPC service, the chief's
servicer and the worker's client live under `keras_tuner.src.distribute`, and the oracle's
bookkeeping that a fault-tolerant chief must read or repair (ongoing trials, the retry
queue, the run counts) is private attributes of `keras_tuner.Oracle`. Everything this
package needs from there is named here, so a keras-tuner upgrade breaks one module, and
`tests/tuner/test_keras_tuner_internals.py` fails loudly (naming what moved) before any
search runs on a version nobody checked.

Checked against keras-tuner 1.4.8 (`KERAS_TUNER_CHECKED`).
"""

from __future__ import annotations

import keras_tuner
from keras_tuner.src import protos as _protos
from keras_tuner.src.distribute import oracle_chief as _oracle_chief
from keras_tuner.src.distribute import oracle_client as _oracle_client
from keras_tuner.src.distribute import utils as _dist_utils

KERAS_TUNER_CHECKED = "1.4.8"
KERAS_TUNER_VERSION = keras_tuner.__version__

# The gRPC service of keras-tuner's chief: request/response messages and the stub/servicer.
service_messages = _protos.get_service()
service_grpc = _protos.get_service_grpc()

# The chief's servicer (one method per RPC, each calling the oracle) and the worker's client.
OracleServicer = _oracle_chief.OracleServicer
OracleClient = _oracle_client.OracleClient

# Which process this is under KERASTUNER_TUNER_ID / KERASTUNER_ORACLE_IP / _PORT.
has_chief_oracle = _dist_utils.has_chief_oracle
is_chief_oracle = _dist_utils.is_chief_oracle

# The private `keras_tuner.Oracle` attributes read or repaired by the fault-tolerant chief
# (tuner/distributed/chief.py). Listed so the test can check that each still exists.
ORACLE_PRIVATE_ATTRIBUTES = ("_retry_queue", "_run_times", "ongoing_trials", "tuner_ids", "end_order",
                             "trials", "max_retries_per_trial", "_get_oracle_fname")


def retry_queue(oracle) -> list:
    """Trial ids waiting to be handed out again (INVALID trials with retries left)."""
    return oracle._retry_queue


def run_count(oracle, trial_id: str) -> int:
    """How many times `trial_id` has ended so far (keras-tuner's retry counter)."""
    return int(oracle._run_times[trial_id])


def oracle_file(oracle) -> str:
    """The path of the oracle's `oracle.json`."""
    return oracle._get_oracle_fname()
