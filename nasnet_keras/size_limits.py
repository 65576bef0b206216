"""Size limits: a model far beyond the paper's sizes is announced, with its cost, before it is built.

Any valid genotype builds, but a 200-block cell on the mobile skeleton takes minutes and
gigabytes to build, without a word. The cost of a NASNet is cheap to estimate from the
genotype and the skeleton alone (no layer is created): per cell, each op's convolution
weights on the cell's filters (separable k x k: 2 (k^2 f + f^2); factorised 1xk-kx1:
2 k f^2; k x k: k^2 f^2; pools and identities: none) plus the two 1x1 input
adjustments, and Mult-Adds as weights times the cell's output positions. The estimate is
within about 30% of the count of the built model for the paper's variants
(tests/models/test_size_limits.py checks it).

Documented ceiling: `NASNet` / `NASNetCIFAR` warn (`ModelSizeWarning`) before building when
the estimate exceeds any of `MAX_PARAMS` (200M parameters), `MAX_MULT_ADDS` (50B per
image) or `MAX_OPS` (1,000 cell operations; NASNet-A Large has 220) -- about twice
NASNet-A Large (88.9M parameters, 23.8B Mult-Adds). Promote the warning to an error
with `warnings.simplefilter("error", ModelSizeWarning)`.
"""

from __future__ import annotations

import dataclasses
import warnings

MAX_PARAMS = 200_000_000
MAX_MULT_ADDS = 50_000_000_000
MAX_OPS = 1_000


class ModelSizeWarning(UserWarning):
    """The model about to be built is far larger than the paper's largest."""


@dataclasses.dataclass(frozen=True)
class SizeEstimate:
    params: int
    mult_adds: int
    ops: int  # cell operations (two per block per cell)
    cells: int


def _op_weights(name: str, f: int) -> int:
    if name.startswith("sep_conv_"):
        k = int(name.split("_")[-1].split("x")[0])
        return 2 * (k * k * f + f * f)
    if name.startswith("conv_1x"):  # factorised 1xk then kx1
        k = int(name.split("_")[-1].split("x")[-1])
        return 2 * k * f * f
    if name in ("dil_conv_3x3", "conv_3x3"):
        return 9 * f * f
    if name == "conv_1x1":
        return f * f
    return 0  # pooling, identity


def estimate(genotype, num_blocks: int, filters: int, image_size: int, skeleton: str,
             filter_multiplier: int = 2, stem_filters: int = 32) -> SizeEstimate:
    """Approximate parameters and Mult-Adds of `skeleton` ("imagenet" or "cifar") built with `genotype`."""
    plan = []  # (cell genotype, filters, output size)
    size = image_size
    if skeleton == "imagenet":
        size = max(1, size // 2)
        for divisor in (filter_multiplier ** 2, filter_multiplier):  # the two stem reduction cells
            size = max(1, size // 2)
            plan.append((genotype.reduction, max(1, filters // divisor), size))
    for stack in range(3):
        f = filters * filter_multiplier ** stack
        if stack:
            size = max(1, size // 2)
            plan.append((genotype.reduction, f, size))
        plan += [(genotype.normal, f, size)] * num_blocks
    params = mult_adds = ops = 0
    previous = stem_filters
    for cell, f, out in plan:
        weights = 2 * previous * f + sum(_op_weights(op, f) for block in cell.blocks for op in block.ops)
        params += weights
        mult_adds += weights * out * out
        ops += 2 * len(cell.blocks)
        previous = len(cell.concat) * f
    return SizeEstimate(int(params), int(mult_adds), int(ops), len(plan))


def format_count(value: float) -> str:
    """1234567 -> '1.23M' (the style of `nasnet_keras.profiling.format_count`, without importing it:
    profiling -> variants -> applications -> this module would be a cycle)."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return str(int(value))


def warn_if_huge(genotype, num_blocks: int, filters: int, image_size: int | None, skeleton: str,
                 filter_multiplier: int = 2) -> SizeEstimate:
    """Warn (`ModelSizeWarning`) with the estimated cost when the model exceeds the documented ceiling."""
    size = image_size or (224 if skeleton == "imagenet" else 32)
    cost = estimate(genotype, num_blocks, filters, size, skeleton, filter_multiplier)
    over = [what for what, value, limit in (("parameters", cost.params, MAX_PARAMS),
                                            ("Mult-Adds", cost.mult_adds, MAX_MULT_ADDS),
                                            ("cell operations", cost.ops, MAX_OPS)) if value > limit]
    if over:
        warnings.warn(
            f"Building a very large NASNet ({', '.join(over)} beyond this package's ceiling): about "
            f"{format_count(cost.params)} parameters, {format_count(cost.mult_adds)} Mult-Adds per {size}x{size} "
            f"image and {cost.ops} cell operations in {cost.cells} cells (B={genotype.num_blocks}, N={num_blocks}, "
            f"{filters} filters; NASNet-A Large: 88.9M, 23.8B, 220). Building may take minutes and many GB; "
            f"ceiling: {format_count(MAX_PARAMS)} parameters, {format_count(MAX_MULT_ADDS)} Mult-Adds, {MAX_OPS} "
            "operations (nasnet_keras.size_limits)",
            ModelSizeWarning,
            stacklevel=3,
        )
    return cost
