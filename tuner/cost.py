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


class CostTarget:
    """What the searched cell should cost in the *final* model, and how hard to hold it.

    The cost of a child is that of the final network built with its cells (default: the
    paper's CIFAR-10 NASNet 6@768, N=6 and F=32 on 32x32 images), counted by
    `nasnet_keras.profiling.profile` without training; the proxy child's own size says
    little about it. Reward = accuracy x prod over set targets of (cost / target)^w.
    """

    def __init__(self, mult_adds: float | None = None, params: float | None = None, weight: float = DEFAULT_WEIGHT,
                 final_cells: int = 6, final_filters: int = 32, image_size: int = 32, channels: int = 3,
                 classes: int = 10):
        from nasnet_keras.checks import check_int

        if mult_adds is None and params is None:
            raise ValueError("A CostTarget needs --target-mult-adds and/or --target-params. Received neither")
        self.mult_adds = check_number("target_mult_adds", mult_adds, minimum=0, exclusive_minimum=True, allow_none=True)
        self.params = check_number("target_params", params, minimum=0, exclusive_minimum=True, allow_none=True)
        self.weight = check_number("cost_weight", weight)
        self.final_cells = check_int("final_cells", final_cells, minimum=1)
        self.final_filters = check_int("final_filters", final_filters, minimum=1)
        self.image_size = check_int("image_size", image_size, minimum=8)
        self.channels = check_int("channels", channels, minimum=1)
        self.classes = check_int("classes", classes, minimum=2)

    def to_dict(self) -> dict:
        return dict(vars(self))

    def final_cost(self, genotype) -> dict:
        """Params and Mult-Adds of the final-size model of `genotype` (built, never trained)."""
        import keras

        from nasnet_keras.applications import NASNetCIFAR
        from nasnet_keras.genotype import as_genotype
        from nasnet_keras.profiling import profile

        genotype = as_genotype(genotype)
        model = NASNetCIFAR(input_shape=(self.image_size, self.image_size, self.channels),
                            num_blocks=self.final_cells, filters=self.final_filters, classes=self.classes,
                            genotype=genotype, name=f"final_{genotype.id}")
        counted = profile(model)
        del model
        keras.backend.clear_session()
        return {"final_params": float(counted.params), "final_mult_adds": float(counted.mult_adds)}

    def reward(self, accuracy: float, cost: dict) -> float:
        reward = float(accuracy)
        if self.mult_adds is not None:
            reward = cost_aware_reward(reward, cost["final_mult_adds"], self.mult_adds, self.weight)
        if self.params is not None:
            reward = cost_aware_reward(reward, cost["final_params"], self.params, self.weight)
        return reward
