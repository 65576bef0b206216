"""The chief's Trial protos, with each running trial's hyperparameters encoded once.

Every CreateTrial and UpdateTrial answer carries the whole trial, and every EndTrial
brings it back: keras-tuner's `Trial.to_proto` encodes the trial's hyperparameters (the
whole space: 50 Choices at B=5) each time, 0.53 ms of the chief's CPU per call here, and
`Trial.from_proto` decodes them again, 0.57 ms. A trial's hyperparameters do not change
while it runs, so `TrialProtos` encodes them when the trial is handed out, reuses the
message for the trial's answers, and, when the worker's EndTrial carries exactly that
message back, takes the chief's own `HyperParameters` instead of decoding it. Everything
else in the protos (id, status, score, metrics) goes through keras-tuner's own code. A
worker that changed or added hyperparameters sends a different message, which is
decoded in full as before.
"""

from __future__ import annotations

import copy

from keras_tuner.engine import trial as trial_module

from tuner import keras_tuner_internals as kti


class _Encoded:
    """Stands in for a trial's `HyperParameters` in `Trial.to_proto`: the message, encoded once."""

    def __init__(self, message):
        self.message = message

    def to_proto(self):
        return self.message


class TrialProtos:
    """Trial <-> proto for the chief's servicer; holds one message per running trial.

    Call `to_proto` for every answer that carries a trial (only RUNNING trials are kept),
    `from_proto` for each EndTrial request, and `forget(trial_id)` once the trial has
    ended, through its worker or an expired lease.
    """

    def __init__(self):
        self._messages: dict[str, tuple[dict, object]] = {}  # trial id -> (values encoded, message)

    def to_proto(self, trial):
        """`trial.to_proto()`, reusing the trial's hyperparameters message while its values are unchanged."""
        if trial.status != trial_module.TrialStatus.RUNNING:  # IDLE / STOPPED answers: made up once
            return trial.to_proto()
        values = trial.hyperparameters.values
        known = self._messages.get(trial.trial_id)
        if known is None or known[0] != values:
            known = (dict(values), trial.hyperparameters.to_proto())
            self._messages[trial.trial_id] = known
        shallow = copy.copy(trial)
        shallow.hyperparameters = _Encoded(known[1])
        return shallow.to_proto()

    def from_proto(self, proto, record=None):
        """`Trial.from_proto(proto)`; with `record` (the chief's trial), its hyperparameters
        when the proto carries back exactly the message sent for it."""
        known = self._messages.get(proto.trial_id)
        if record is None or known is None or proto.hyperparameters != known[1]:
            return trial_module.Trial.from_proto(proto)
        rest = kti.trial_message()
        rest.CopyFrom(proto)
        rest.ClearField("hyperparameters")
        trial = trial_module.Trial.from_proto(rest)
        trial.hyperparameters = record.hyperparameters
        return trial

    def forget(self, trial_id) -> None:
        self._messages.pop(trial_id, None)

    def __len__(self) -> int:
        return len(self._messages)
