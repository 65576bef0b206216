"""keras-tuner's private parts that tuner/keras_tuner_internals.py fences: fail loudly if they move."""

from __future__ import annotations

import inspect

import keras_tuner

from tuner import keras_tuner_internals as kti


def test_installed_keras_tuner_is_the_checked_series():
    major_minor = ".".join(kti.KERAS_TUNER_VERSION.split(".")[:2])
    checked = ".".join(kti.KERAS_TUNER_CHECKED.split(".")[:2])
    assert major_minor == checked, (
        f"keras-tuner {kti.KERAS_TUNER_VERSION} is installed but tuner/keras_tuner_internals.py was checked against "
        f"{kti.KERAS_TUNER_CHECKED}: re-read keras_tuner/src/distribute and engine/oracle.py, then update it")


def test_the_grpc_service_and_its_ends_are_where_we_use_them():
    for name in ("CreateTrial", "UpdateTrial", "EndTrial", "GetTrial", "GetBestTrials", "GetSpace", "UpdateSpace"):
        assert callable(getattr(kti.OracleServicer, name)), name
        assert hasattr(kti.service_messages, f"{name}Request"), name
        assert hasattr(kti.service_messages, f"{name}Response"), name
    assert hasattr(kti.service_grpc, "OracleStub") and hasattr(kti.service_grpc, "add_OracleServicer_to_server")
    assert list(inspect.signature(kti.OracleServicer.__init__).parameters) == ["self", "oracle"]
    # ChiefClient relies on the client reading `objective`/`max_trials` from the local oracle.
    assert "objective" in inspect.getsource(kti.OracleClient.__getattr__)
    assert "max_trials" in inspect.getsource(kti.OracleClient.__getattr__)


def test_the_private_oracle_state_the_chief_repairs_still_exists():
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=2)
    for name in kti.ORACLE_PRIVATE_ATTRIBUTES:
        assert hasattr(oracle, name), f"keras_tuner.Oracle has no {name!r} any more"
    assert kti.retry_queue(oracle) == [] and kti.run_count(oracle, "0") == 0
    # The restart logic assumes reload() re-queues ongoing trials and create_trial serves the queue first
    # and returns an ongoing trial again to the same tuner id.
    # (`synchronized` hides the methods' source, so read the class.)
    source = inspect.getsource(keras_tuner.Oracle)
    assert "self._retry_queue.append(trial.trial_id)" in inspect.getsource(keras_tuner.Oracle.reload)
    assert "if tuner_id in self.ongoing_trials:" in source and "self._retry_queue.pop()" in source
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
    assert kti.has_chief_oracle() and kti.is_chief_oracle()
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker-1")
    assert kti.has_chief_oracle() and not kti.is_chief_oracle()
