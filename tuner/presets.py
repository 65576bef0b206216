"""Named settings of the search strategies: the paper's, and the default for a user's budget.

The paper trains 20,000 children; users train 100-500. Settings that suit the first
(PPO at learning rate 0.00035, raw advantages; evolution with P=100, S=25) barely move in
the second. The "default" rows were chosen on the NAS-Bench-Graph *tuning* datasets
(cora, citeseer, pubmed) by `benchmarks/strategies.py --sweep`, and are reported on the
other datasets; the tables are in docs/search_strategies.md.

"paper" for PPO is the paper's learning rate, entropy weight, baseline decay and batch
size (App. A.3) with this project's clip 0.2 and 10 epochs (tuner.ppo documents those);
for evolution it is Real et al.'s (2019) P=100, S=25.
"""

from __future__ import annotations

from typing import Any

from nasnet_keras.checks import check_choice

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "ppo": {
        # `tuner.ppo.PPO`'s own defaults are the paper's: the preset adds nothing to them.
        "paper": {},
        "default": {"learning_rate": 0.01, "entropy_weight": 0.01, "normalize_advantages": True},
    },
    "evolution": {
        "paper": {"population_size": 100, "sample_size": 25},
        "default": {"population_size": 20, "sample_size": 5},
    },
    "random": {"paper": {}, "default": {}},
}
PRESET_NAMES = ("default", "paper")


def preset_settings(strategy: str, preset: str) -> dict[str, Any]:
    """The named settings of `strategy` (a copy; explicit options override them)."""
    check_choice("preset", preset, PRESET_NAMES)
    check_choice("strategy", strategy, tuple(PRESETS))
    return dict(PRESETS[strategy][preset])
