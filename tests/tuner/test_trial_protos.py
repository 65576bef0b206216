"""The chief's trial protos equal keras-tuner's own, with the hyperparameters encoded once per trial."""

import keras_tuner
import pytest

from tuner import keras_tuner_internals as internals
from tuner.distributed.trial_protos import TrialProtos
from tuner.oracles import make_oracle
from tuner.space import SearchSpace

TrialStatus = keras_tuner.engine.trial.TrialStatus
Trial = keras_tuner.engine.trial.Trial


@pytest.fixture
def running(tmp_path):
    oracle = make_oracle("ppo", SearchSpace(num_blocks=2), max_trials=5, seed=0, batch_size=2)
    oracle.verbose = 0
    internals.set_project_dir(oracle, str(tmp_path), "project")
    trial = oracle.create_trial("w0")
    assert trial.status == TrialStatus.RUNNING
    return oracle, trial


def test_answers_equal_keras_tuners_proto_and_reuse_one_message(running, monkeypatch):
    oracle, trial = running
    protos = TrialProtos()
    assert protos.to_proto(trial) == trial.to_proto()
    oracle.update_trial(trial.trial_id, {"val_accuracy": 0.25}, step=3)
    encoded = []
    original = type(trial.hyperparameters).to_proto
    monkeypatch.setattr(type(trial.hyperparameters), "to_proto",
                        lambda self: encoded.append(1) or original(self))
    again = protos.to_proto(trial)
    assert encoded == []  # the message of the first answer, not encoded again
    monkeypatch.undo()
    assert again == trial.to_proto() and again.metrics == trial.to_proto().metrics
    trial.hyperparameters.values["normal_b0_op_1"] = "identity"  # changed values: encoded anew
    assert protos.to_proto(trial) == trial.to_proto()
    assert len(protos) == 1
    protos.forget(trial.trial_id)
    assert len(protos) == 0


def test_only_running_trials_are_kept(running):
    oracle, _ = running
    protos = TrialProtos()
    idle = Trial(oracle.get_space(), status=TrialStatus.IDLE)
    assert protos.to_proto(idle) == idle.to_proto()
    assert len(protos) == 0


def test_an_end_that_brings_the_message_back_uses_the_chiefs_hyperparameters(running):
    oracle, trial = running
    protos = TrialProtos()
    sent = protos.to_proto(trial)
    worker_side = Trial.from_proto(sent)  # what the worker decodes, trains and sends back
    worker_side.status = TrialStatus.COMPLETED
    worker_side.score, worker_side.best_step = 0.5, 2
    back = worker_side.to_proto()
    reference = Trial.from_proto(back)
    decoded = protos.from_proto(back, oracle.trials[trial.trial_id])
    assert decoded.hyperparameters is trial.hyperparameters
    assert decoded.to_proto() == reference.to_proto()
    assert (decoded.trial_id, decoded.status, decoded.score, decoded.best_step) == (
        reference.trial_id, reference.status, reference.score, reference.best_step)
    # A worker that changed a value sends another message: decoded in full, its values kept.
    worker_side.hyperparameters.values["normal_b0_op_1"] = "identity"
    changed = protos.from_proto(worker_side.to_proto(), oracle.trials[trial.trial_id])
    assert changed.hyperparameters is not trial.hyperparameters
    assert changed.hyperparameters.values["normal_b0_op_1"] == "identity"
    # Without the chief's record (or after forget) it is keras-tuner's decode.
    assert protos.from_proto(back).hyperparameters is not trial.hyperparameters
    protos.forget(trial.trial_id)
    assert protos.from_proto(back, oracle.trials[trial.trial_id]).hyperparameters is not trial.hyperparameters
