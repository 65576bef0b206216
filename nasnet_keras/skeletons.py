"""Stacking cells into networks: the CIFAR and ImageNet skeletons of the paper (Fig. 2).

Both skeletons are a *plan* (a list of cells with their type, filters and Keras block
id) run by one loop that threads `(h_i, h_{i-1})` through the cells:

* ImageNet: 3x3 stride-2 'valid' stem conv + BN, two Reduction "stem" cells at
  filters / m^2 and filters / m, then N Normal, Reduction, N Normal, Reduction, N Normal;
* CIFAR: 3x3 stem conv (filters * stem_multiplier) + BN, then N Normal, Reduction, ...

Filters are multiplied by `filter_multiplier` (2) at each reduction. With
`skip_reduction` (NASNet-Large, slim's `skip_reduction_layer_input`) the Normal cell
after a Reduction cell takes as h_{i-1} the cell *before* the reduction's input.
"""

from __future__ import annotations

import dataclasses

from keras import layers

from nasnet_keras.cells import NASNetCell
from nasnet_keras.genotype import Genotype
from nasnet_keras.ops import ConvBNFactory


@dataclasses.dataclass(frozen=True)
class CellPlan:
    cell_type: str
    filters: int
    block_id: str
    is_stem: bool = False


def imagenet_plan(num_blocks: int, filters: int, filter_multiplier: int = 2) -> list[CellPlan]:
    m = filter_multiplier
    plan = [
        CellPlan("reduction", filters // m**2, "stem_1", True),
        CellPlan("reduction", filters // m, "stem_2", True),
    ]
    return plan + _three_stacks(num_blocks, filters, m)


def cifar_plan(num_blocks: int, filters: int, filter_multiplier: int = 2) -> list[CellPlan]:
    return _three_stacks(num_blocks, filters, filter_multiplier)


def _three_stacks(n: int, filters: int, m: int) -> list[CellPlan]:
    plan = [CellPlan("normal", filters, str(i)) for i in range(n)]
    plan.append(CellPlan("reduction", filters * m, f"reduce_{n}"))
    plan += [CellPlan("normal", filters * m, str(n + i + 1)) for i in range(n)]
    plan.append(CellPlan("reduction", filters * m**2, f"reduce_{2 * n}"))
    plan += [CellPlan("normal", filters * m**2, str(2 * n + i + 1)) for i in range(n)]
    return plan


@dataclasses.dataclass
class Features:
    """What a skeleton produced: the last cell's output and the aux head's input.

    (Feature maps by stride for detection backbones are read off the built model by
    `savedmodels.introspect`, which also works for models reloaded from `.keras` files.)
    """

    output: object
    aux_input: object  # output of the cell just before the second (non-stem) reduction


def run_plan(
    x,
    plan: list[CellPlan],
    genotype: Genotype,
    bn: ConvBNFactory,
    skip_reduction: bool = False,
    drop_path_keep_prob: float = 1.0,
) -> Features:
    """Apply the cells of `plan` to `x`; returns the last output and the endpoints."""
    if not 0.0 < drop_path_keep_prob <= 1.0:
        raise ValueError(f"`drop_path_keep_prob` must be in (0, 1]. Received: {drop_path_keep_prob}")
    total = len(plan)
    reductions = [i for i, c in enumerate(plan) if c.cell_type == "reduction" and not c.is_stem]
    aux_index = reductions[1] - 1 if len(reductions) >= 2 else None
    p = None
    aux_input = None
    # Count reductions seen by x and p, so each cell knows whether h_(i-1) is larger than
    # h_i without relying on static shapes (which are None for dynamic input sizes).
    x_level = p_level = 0
    for index, spec in enumerate(plan):
        cell = NASNetCell(
            genotype.normal if spec.cell_type == "normal" else genotype.reduction,
            filters=spec.filters,
            block_id=spec.block_id,
            drop_path_max_rate=(index + 1) / total * (1.0 - drop_path_keep_prob),
            bn_momentum=bn.momentum,
            bn_epsilon=bn.epsilon,
            weight_decay=bn.weight_decay,
            reduce_prev=None if p is None else p_level < x_level,
        )
        y = cell(x if p is None else [x, p])
        if not (spec.cell_type == "reduction" and skip_reduction and not spec.is_stem):
            p, p_level = x, x_level
        x = y
        x_level += spec.cell_type == "reduction"
        if index == aux_index:
            aux_input = x
    return Features(x, aux_input)


def _stem(img_input, filters: int, bn: ConvBNFactory, **conv_kwargs):
    """The 3x3 stem conv + BN both skeletons start with (keras.applications' layer names)."""
    return bn.batch_norm("stem_bn1")(bn.conv(filters, 3, name="stem_conv1", **conv_kwargs)(img_input))


def imagenet_features(img_input, genotype: Genotype, num_blocks: int, filters: int, stem_filters: int,
                      skip_reduction: bool, filter_multiplier: int, bn: ConvBNFactory,
                      drop_path_keep_prob: float = 1.0) -> Features:
    """ImageNet skeleton: stride-2 'valid' stem, two stem Reduction cells, three stacks."""
    x = _stem(img_input, stem_filters, bn, strides=2, padding="valid")
    return run_plan(x, imagenet_plan(num_blocks, filters, filter_multiplier), genotype, bn,
                    skip_reduction=skip_reduction, drop_path_keep_prob=drop_path_keep_prob)


def cifar_features(img_input, genotype: Genotype, num_blocks: int, filters: int, stem_multiplier: float,
                   filter_multiplier: int, bn: ConvBNFactory, drop_path_keep_prob: float = 1.0) -> Features:
    """CIFAR skeleton: a stem of `filters * stem_multiplier` channels, then three stacks."""
    x = _stem(img_input, int(filters * stem_multiplier), bn)
    return run_plan(x, cifar_plan(num_blocks, filters, filter_multiplier), genotype, bn,
                    drop_path_keep_prob=drop_path_keep_prob)


def aux_head(x, classes: int, activation, bn: ConvBNFactory, name: str = "aux"):
    """TF-slim's auxiliary classifier: ReLU -> avg-pool 5x5/3 valid -> 1x1 conv 128 -> BN ->
    ReLU -> conv 768 over the whole map -> BN -> ReLU -> flatten -> dense.

    On maps smaller than 5x5 (tiny test inputs) the pool shrinks to the map size.
    """
    pool = min(5, x.shape[1] or 5, x.shape[2] or 5)
    x = layers.Activation("relu", name=f"{name}_relu_0")(x)
    x = layers.AveragePooling2D(pool, strides=3, padding="valid", name=f"{name}_pool")(x)
    x = layers.Conv2D(128, 1, use_bias=False, kernel_regularizer=bn.regularizer(), name=f"{name}_proj")(x)
    x = bn.batch_norm(f"{name}_bn_0")(x)
    x = layers.Activation("relu", name=f"{name}_relu_1")(x)
    x = layers.Conv2D(768, tuple(x.shape[1:3]), padding="valid", use_bias=False,
                      kernel_regularizer=bn.regularizer(), name=f"{name}_conv")(x)
    x = bn.batch_norm(f"{name}_bn_1")(x)
    x = layers.Activation("relu", name=f"{name}_relu_2")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    return layers.Dense(classes, activation=activation, kernel_regularizer=bn.regularizer(),
                        dtype="float32", name=f"{name}_predictions")(x)
