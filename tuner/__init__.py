"""Architecture search for NASNet with keras-tuner (paper Sec. 3, App. A.2-A.3).

Three separate parts (style.md §4):
    SearchSpace   the 10B categorical decisions <-> keras-tuner values <-> Genotype
    Controller    an LSTM policy over any list of categorical decisions
    PPO           trains a Controller from rewards
and the adapter to keras-tuner:
    PPOOracle, RandomOracle, EvolutionOracle, make_oracle("evolution" | "ppo" | "random", space, **kw)

Names are resolved on first use, so importing one part (e.g. `SearchSpace` for a command
line's argument checks) does not build the others.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SearchSpace": "tuner.space",
    "Controller": "tuner.controller",
    "PPO": "tuner.ppo",
    "PPOOracle": "tuner.oracles",
    "RandomOracle": "tuner.oracles",
    "EvolutionOracle": "tuner.evolution",
    "make_oracle": "tuner.oracles",
    "STRATEGIES": "tuner.oracles",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tuner' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
