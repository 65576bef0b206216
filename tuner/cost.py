"""Hardware-aware reward (MnasNet, Tan et al. CVPR 2019, Eq. 2): accuracy x (cost / target)^w.

Beyond the paper: the search is asked for the best cell *at a cost*, e.g. Mult-Adds or
parameters of the final model, or measured latency. With w < 0 a child over the target
loses reward smoothly and one under it gains a little; MnasNet's "soft" setting is
w = -0.07 on both sides (their alpha = beta = -0.07: doubling the cost costs ~5% reward).
`weight_below` can differ from `weight` (MnasNet's "hard" constraint: 0 below, -1 above).
"""

from __future__ import annotations

import math

from nasnet_keras.checks import check_number

DEFAULT_WEIGHT = -0.07


def cost_aware_reward(accuracy: float, cost: float, target: float, weight: float = DEFAULT_WEIGHT,
                      weight_below: float | None = None) -> float:
    """accuracy x (cost / target)^w, with `weight_below` (default `weight`) where cost <= target."""
    check_number("target", target, minimum=0, exclusive_minimum=True)
    check_number("cost", cost, minimum=0)
    check_number("weight", weight)
    w = weight if cost > target or weight_below is None else check_number("weight_below", weight_below)
    if cost == 0:
        return float(accuracy) if w >= 0 else float(accuracy) * (1e-12 / target) ** w
    return float(accuracy) * math.pow(cost / target, w)
