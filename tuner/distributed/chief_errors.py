"""What a worker raises when its chief does not serve it.

The chief is gone or refuses the worker: keras-tuner `FatalError`s, which its trial loop
must not swallow (the worker stops). The chief took the worker's trial back: not fatal,
the worker goes on with the next trial. (Not `nasnet_keras.errors`, which sorts any
error into a user's fault or a bug for the command line.)
"""

from __future__ import annotations

from keras_tuner.errors import FatalError


class ChiefUnavailableError(FatalError):
    """The chief did not answer within the worker's `chief_timeout` (it is gone or unreachable)."""


class ChiefRefusedError(FatalError, ValueError):
    """The chief answered and refused this worker (other settings, duplicate id, bad token...)."""


class LeaseLostError(RuntimeError):
    """The chief took this worker's trial back (its lease expired); the worker goes on with the next one."""
