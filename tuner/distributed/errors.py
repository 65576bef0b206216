"""What a worker raises when it cannot go on (keras-tuner `FatalError`s: the trial loop must not swallow them)."""

from __future__ import annotations

from keras_tuner.errors import FatalError


class ChiefUnavailableError(FatalError):
    """The chief did not answer within the worker's `chief_timeout` (it is gone or unreachable)."""


class ChiefRefusedError(FatalError, ValueError):
    """The chief answered and refused this worker (other settings, duplicate id, bad token...)."""


class LeaseLostError(RuntimeError):
    """The chief took this worker's trial back (its lease expired); the worker goes on with the next one."""
