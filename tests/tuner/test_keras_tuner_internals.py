"""Fails loudly if keras-tuner moves the private parts `tuner/keras_tuner_internals.py` reads."""

import inspect
import os

import keras_tuner
import pytest

from tuner import keras_tuner_internals as internals

from tuner.oracles import RandomOracle
from tuner.space import SearchSpace


def test_the_installed_keras_tuner_is_the_checked_one():
    checked = internals.CHECKED_VERSION.rsplit(".", 1)[0]
    assert keras_tuner.__version__.startswith(checked + "."), (
        f"keras-tuner {keras_tuner.__version__} is installed; tuner/keras_tuner_internals.py was checked against "
        f"{internals.CHECKED_VERSION}: re-check every private use listed there, then update CHECKED_VERSION"
    )


def test_oracle_internals(tmp_path):
    oracle = RandomOracle(SearchSpace(num_blocks=1), seed=0, max_trials=2)
    internals.set_project_dir(oracle, str(tmp_path), "project")
    assert internals.project_dir(oracle) == os.path.join(str(tmp_path), "project")
    assert internals.oracle_file(oracle) == os.path.join(str(tmp_path), "project", "oracle.json")
    queue = internals.retry_queue(oracle)
    assert queue == [] and queue is oracle._retry_queue  # the live list: removing an id cancels a re-run
    oracle.save()
    assert os.path.exists(internals.oracle_file(oracle))
    trial_dir = internals.trial_dir(oracle, "7")
    assert trial_dir == os.path.join(str(tmp_path), "project", "trial_7") and os.path.isdir(trial_dir)


def _one_trial(oracle):
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"score": 1.0})
    trial.status = keras_tuner.engine.trial.TrialStatus.COMPLETED
    oracle.end_trial(trial)


@pytest.mark.parametrize("skipped", [False, True])
def test_skip_state_files_leaves_no_oracle_or_trial_file(tmp_path, skipped):
    """keras-tuner's own oracle: if it renames `_save_trial` (or saves elsewhere), files appear."""
    hp = keras_tuner.HyperParameters()
    hp.Choice("x", [0, 1])
    oracle = keras_tuner.oracles.RandomSearchOracle(objective=keras_tuner.Objective("score", "max"),
                                                   max_trials=3, hyperparameters=hp, seed=0)
    internals.set_project_dir(oracle, str(tmp_path), "project")
    if skipped:
        internals.skip_state_files(oracle)
    _one_trial(oracle)
    written = sorted(os.path.relpath(os.path.join(d, f), tmp_path) for d, _, files in os.walk(tmp_path) for f in files)
    if skipped:
        assert written == [], f"keras-tuner wrote state files although they were skipped: {written}"
    else:  # the control: without the switch keras-tuner writes both (so the check above can fail)
        assert os.path.join("project", "oracle.json") in written
        assert any(name.endswith("trial.json") for name in written), written


@pytest.mark.parametrize("tuner_id, chief, worker", [(None, False, False), ("chief", True, False),
                                                     ("worker0", False, True)])
def test_distributed_roles(monkeypatch, tuner_id, chief, worker):
    for name in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        monkeypatch.delenv(name, raising=False)
    if tuner_id is not None:
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
        monkeypatch.setenv("KERASTUNER_TUNER_ID", tuner_id)
    assert internals.is_chief_oracle() is chief
    assert internals.is_distributed_worker() is worker


def test_the_grpc_service_and_its_ends_are_where_we_use_them():
    for name in ("CreateTrial", "UpdateTrial", "EndTrial", "GetTrial", "GetBestTrials", "GetSpace", "UpdateSpace"):
        assert callable(getattr(internals.OracleServicer, name)), name
        assert hasattr(internals.service_messages, f"{name}Request"), name
        assert hasattr(internals.service_messages, f"{name}Response"), name
    assert hasattr(internals.service_grpc, "OracleStub") and hasattr(internals.service_grpc, "add_OracleServicer_to_server")
    assert list(inspect.signature(internals.OracleServicer.__init__).parameters) == ["self", "oracle"]
    # ChiefClient relies on the client reading `objective`/`max_trials` from the local oracle.
    assert "objective" in inspect.getsource(internals.OracleClient.__getattr__)
    assert "max_trials" in inspect.getsource(internals.OracleClient.__getattr__)


def test_the_private_oracle_state_the_chief_repairs_still_exists():
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=2)
    for name in internals.ORACLE_PRIVATE_ATTRIBUTES:
        assert hasattr(oracle, name), f"keras_tuner.Oracle has no {name!r} any more"
    assert internals.retry_queue(oracle) == [] and internals.run_count(oracle, "0") == 0
    # The restart logic assumes reload() re-queues ongoing trials and create_trial serves the queue first
    # and returns an ongoing trial again to the same tuner id.
    # (`synchronized` hides the methods' source, so read the class.)
    source = inspect.getsource(keras_tuner.Oracle)
    assert "self._retry_queue.append(trial.trial_id)" in inspect.getsource(keras_tuner.Oracle.reload)
    assert "if tuner_id in self.ongoing_trials:" in source and "self._retry_queue.pop()" in source
    # The hooks tuner.state_journal overrides are still what keras-tuner calls.
    assert "self._check_consecutive_failures()" in source and source.count("self._save_trial(trial)") >= 3
    # end_trial's retry rule (INVALID -> queue, then FAILED after max_retries_per_trial).
    assert "max_retries_per_trial" in inspect.getsource(keras_tuner.Oracle._retry)


def test_the_trial_proto_still_drops_the_failure_message():
    """Why workers send it as metadata: if keras-tuner adds the field, the side channel can go."""
    trial = keras_tuner.engine.trial.Trial(keras_tuner.HyperParameters(), trial_id="0", status="FAILED",
                                           message="boom")
    assert keras_tuner.engine.trial.Trial.from_proto(trial.to_proto()).message is None


def test_the_chief_role_is_still_chosen_by_the_tuner_id(monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert internals.has_chief_oracle() and internals.is_chief_oracle()
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker-1")
    assert internals.has_chief_oracle() and not internals.is_chief_oracle()


def test_failed_trial_tracebacks_still_follow_the_config_flag():
    from keras_tuner.src import config
    from keras_tuner.src.engine import base_tuner

    assert "config_module.DEBUG" in inspect.getsource(base_tuner.BaseTuner._try_run_and_update_trial)
    before = config.DEBUG
    with internals.failed_trial_tracebacks(False):
        assert config.DEBUG is False
    assert config.DEBUG == before


def _space_config(hyperparameters):
    return [(type(hp).__name__, hp.get_config()) for hp in hyperparameters.space], dict(hyperparameters.values)


@pytest.mark.parametrize("strategy", ["ppo", "evolution", "random"])
def test_the_fast_space_copy_is_keras_tuners_copy_also_after_a_resume(tmp_path, strategy):
    """Every oracle's space copies with `_FastCopyHyperParameters.copy` (what create_trial
    calls), which gives what keras-tuner's own copy gives; a reload keeps it."""
    from tuner.oracles import make_oracle

    space = SearchSpace(num_blocks=2)
    oracle = make_oracle(strategy, space, seed=0, max_trials=3)
    internals.set_project_dir(oracle, str(tmp_path), "project")
    oracle.hyperparameters.values = {"normal_b0_op_1": "identity"}
    fast, reference = oracle.hyperparameters.copy(), keras_tuner.HyperParameters.copy(oracle.hyperparameters)
    assert type(fast) is internals._FastCopyHyperParameters
    assert _space_config(fast) == _space_config(reference)
    assert all(a is not b for a, b in zip(fast.space, oracle.hyperparameters.space))  # a copy, not a view
    fast.values["normal_b0_op_1"] = "avg_pool_3x3"
    assert oracle.hyperparameters.values["normal_b0_op_1"] == "identity"
    oracle.hyperparameters.values = {}
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
    trial.status = keras_tuner.engine.trial.TrialStatus.COMPLETED
    oracle.end_trial(trial)
    oracle.save()

    resumed = make_oracle(strategy, space, seed=0, max_trials=3)
    internals.set_project_dir(resumed, str(tmp_path), "project")
    resumed.reload()
    assert type(resumed.hyperparameters) is internals._FastCopyHyperParameters
    assert _space_config(resumed.hyperparameters) == _space_config(oracle.hyperparameters)
    trial = resumed.create_trial("tuner0")
    assert sorted(trial.hyperparameters.values) == sorted(space.names)


def test_the_journal_reads_the_state_with_the_live_set_of_tried_hashes(tmp_path):
    """`state_sharing_tried_hashes` is `get_state()` with the oracle's own set in place of its list copy."""
    from tuner.oracles import make_oracle

    oracle = make_oracle("random", SearchSpace(num_blocks=2), seed=0, max_trials=4)
    oracle.verbose = 0
    internals.set_project_dir(oracle, str(tmp_path), "project")
    for _ in range(3):
        trial = oracle.create_trial("tuner0")
        oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
        trial.status = keras_tuner.engine.trial.TrialStatus.COMPLETED
        oracle.end_trial(trial)
    shared = internals.state_sharing_tried_hashes(oracle)
    assert shared["tried_so_far"] is oracle._tried_so_far and len(oracle._tried_so_far) == 3
    reference = oracle.get_state()
    assert {**shared, "tried_so_far": sorted(shared["tried_so_far"])} == {
        **reference, "tried_so_far": sorted(reference["tried_so_far"])}
