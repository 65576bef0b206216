"""NASNet cells as Keras layers, built from a `CellGenotype` by one generic builder.

A cell takes `[h_i, h_{i-1}]` (the previous cell's output and the one before it) and
returns the concatenation of its loose ends. The steps mirror TF-slim's `NasNetABaseCell`
and keras.applications' `_normal_a_cell` / `_reduction_a_cell`:

1. adjust h_{i-1}: factorised reduction if its spatial size is twice h_i's, or a 1x1
   projection if its channel count differs from the cell's `filters`;
2. state 0 = BN(1x1 conv(ReLU(h_i))), state 1 = adjusted h_{i-1};
3. each block applies its two ops (stride 2 in a Reduction cell for ops that read states
   0/1), drops non-identity paths with ScheduledDropPath, and combines the two results;
4. the loose ends are concatenated (a loose end of the wrong spatial size is first
   factorised-reduced, as slim's `_combine_unused_states` does).

`get_config` carries the genotype, so `.keras` files reload the same architecture.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from nasnet_keras.kernels import fast as fast_kernels
from nasnet_keras.checks import check_int
from nasnet_keras.drop_path import ScheduledDropPath
from nasnet_keras.genotype import CellGenotype
from nasnet_keras.ops import ConvBNFactory, make_op
from nasnet_keras.pointwise_conv import can_fold, conv_norm


class FactorizedReduction(layers.Layer):
    """Halve H and W without losing half the pixels: two offset 1x1 convs, concatenated.

    ReLU -> [1x1 conv on x[::2, ::2] | 1x1 conv on x shifted by one pixel, [::2, ::2]] -> BN.
    keras.applications samples with 1x1 average pools after a crop and a pad. In training,
    with static sizes on TensorFlow, `even_odd_samples` takes both samples from one reshape
    instead (same numbers, a cheaper gradient; see there). Inference keeps the pools: their
    forward costs about the same, and LiteRT's converter rejects the 6-D strided slice.
    """

    def __init__(self, filters: int, tag: str, bn: ConvBNFactory, **kwargs):
        super().__init__(name=f"adjust_reduction_{tag}", **kwargs)
        self.filters = filters
        half = filters // 2
        self.sample_1 = layers.AveragePooling2D(1, strides=2, padding="valid", name=f"adjust_avg_pool_1_{tag}")
        self.sample_2 = layers.AveragePooling2D(1, strides=2, padding="valid", name=f"adjust_avg_pool_2_{tag}")
        self.conv_1 = bn.conv(half, 1, name=f"adjust_conv_1_{tag}")
        self.conv_2 = bn.conv(filters - half, 1, name=f"adjust_conv_2_{tag}")
        self.norm = bn.batch_norm(f"adjust_bn_{tag}")
        self.reshape_samples = fast_kernels()

    def build(self, input_shape):
        out = self.compute_output_shape(input_shape)
        self.conv_1.build(input_shape)
        self.conv_2.build(input_shape)
        self.norm.build(out)

    def call(self, x, training=None):
        x = keras.ops.relu(x)
        if self.reshape_samples and training is True and keras.backend.backend() == "tensorflow" \
                and None not in x.shape[1:]:
            sample_1, sample_2 = even_odd_samples(x)
        else:
            sample_1 = self.sample_1(x)
            sample_2 = self.sample_2(keras.ops.pad(x[:, 1:, 1:, :], ((0, 0), (0, 1), (0, 1), (0, 0))))
        if can_fold(self.conv_1, self.norm, sample_1, training) and can_fold(self.conv_2, self.norm, sample_2, training):
            # Inference: the BatchNorm of the concatenation folds into each half's 1x1 MatMul.
            scale, offset = self.norm.inference_affine()
            half = self.conv_1.filters
            path_1 = self.conv_1.call_folded(sample_1, (scale[:half], offset[:half]))
            path_2 = self.conv_2.call_folded(sample_2, (scale[half:], offset[half:]))
            return keras.ops.concatenate([path_1, path_2], axis=-1)
        path_1, path_2 = self.conv_1(sample_1), self.conv_2(sample_2)
        return self.norm(keras.ops.concatenate([path_1, path_2], axis=-1), training=training)

    def compute_output_shape(self, input_shape):
        def half(size):
            return None if size is None else -(-size // 2)

        return (input_shape[0], half(input_shape[1]), half(input_shape[2]), self.filters)


def even_odd_samples(x):
    """(x[:, ::2, ::2], x[:, 1::2, 1::2]) of NHWC `x` (static H, W, C), odd sizes zero-padded
    at the end to ceil(H/2) x ceil(W/2): the factorised reduction's two samples.

    keras.applications computes them as AvgPool1x1/2(x) and AvgPool1x1/2(pad(x[1:, 1:])),
    three full-size passes forward and four back. Here the forward is one reshape to
    [N, H/2, 2, W/2, 2, C] and two slices, and the gradient writes the input's gradient
    once, by `depth_to_space` of [d_1, 0, 0, d_2] (measured 2026-12-02, this CPU, forward
    and backward of both samples, median of 9: [32, 111, 111, 32] 125 -> 35 ms; [32, 56,
    56, 44] 46 -> 10 ms; [4, 165, 165, 96] 111 -> 37 ms). Equal to the pools' numbers exactly.
    """
    import tensorflow as tf

    _, height, width, channels = x.shape
    pad_h, pad_w = height % 2, width % 2

    @tf.custom_gradient
    def samples(x):
        padded = tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]]) if pad_h or pad_w else x
        blocks = tf.reshape(padded, [-1, (height + 1) // 2, 2, (width + 1) // 2, 2, channels])
        even, odd = blocks[:, :, 0, :, 0, :], blocks[:, :, 1, :, 1, :]

        def gradient(d_even, d_odd):
            zeros = tf.zeros_like(d_even)
            grad = tf.nn.depth_to_space(tf.concat([d_even, zeros, zeros, d_odd], axis=-1), 2)
            return grad[:, :height, :width, :] if pad_h or pad_w else grad

        return (even, odd), gradient

    return samples(x)


class Projection(layers.Layer):
    """ReLU -> 1x1 conv -> BN: brings h_{i-1} to the cell's channel count."""

    def __init__(self, filters: int, tag: str, bn: ConvBNFactory, **kwargs):
        super().__init__(name=f"adjust_projection_{tag}", **kwargs)
        self.filters = filters
        self.conv = bn.conv(filters, 1, name=f"adjust_conv_projection_{tag}")
        self.norm = bn.batch_norm(f"adjust_bn_{tag}")

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.norm.build(tuple(input_shape[:-1]) + (self.filters,))

    def call(self, x, training=None):
        return conv_norm(self.conv, self.norm, keras.ops.relu(x), training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)


def _spatial(shape) -> tuple:
    return tuple(shape[1:3])


@keras.saving.register_keras_serializable(package="nasnet_keras")
class NASNetCell(layers.Layer):
    """A Normal or Reduction cell (its genotype's `cell_type` decides which).

    Args:
        genotype: the cell's `CellGenotype` (or its dict form).
        filters: channels of every block output (the paper's per-cell filter count).
        block_id: suffix of the sub-layer names; keras.applications uses "0", "1", ...,
            "reduce_4", "stem_1", and weight files are matched through these names.
        drop_path_max_rate: final drop rate of this cell's paths (0 disables drop path).
        bn_momentum, bn_epsilon: BatchNorm settings (Keras: 0.9997 / 1e-3; slim CIFAR 0.9 / 1e-5).
        weight_decay: TF-slim-style L2 weight decay on conv kernels (0 disables).
        reduce_prev: whether h_(i-1) has twice h_i's spatial size. Inferred from static
            shapes when they are known; the skeleton states it so that models with
            dynamic input sizes (None, None, 3) get the factorised reduction too (keras.
            applications infers it from shapes only, and its dynamic-size models break).
    """

    def __init__(
        self,
        genotype: CellGenotype | dict,
        filters: int,
        block_id: str = "0",
        drop_path_max_rate: float = 0.0,
        bn_momentum: float = 0.9997,
        bn_epsilon: float = 1e-3,
        weight_decay: float = 0.0,
        cell_type: str | None = None,
        reduce_prev: bool | None = None,
        **kwargs,
    ):
        if isinstance(genotype, dict):
            genotype = CellGenotype.from_dict(genotype, cell_type or genotype.get("cell_type", "normal"))
        if not isinstance(genotype, CellGenotype):
            raise ValueError(f"`genotype` must be a CellGenotype or its dict. Received: {genotype!r}")
        if cell_type is not None and cell_type != genotype.cell_type:
            raise ValueError(f"cell_type={cell_type!r} contradicts the genotype's {genotype.cell_type!r}")
        check_int("filters", filters, minimum=1)
        kind = genotype.cell_type
        kwargs.setdefault("name", f"{kind}_cell_{block_id}")
        super().__init__(**kwargs)
        self.genotype = genotype
        self.filters = filters
        self.block_id = str(block_id)
        self.drop_path_max_rate = float(drop_path_max_rate)
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon
        self.weight_decay = weight_decay
        self.reduce_prev = reduce_prev
        self.strides = 2 if kind == "reduction" else 1
        self.bn = ConvBNFactory(bn_momentum, bn_epsilon, weight_decay)

        bid = self.block_id
        self.conv_1 = self.bn.conv(filters, 1, name=f"{kind}_conv_1_{bid}")
        self.bn_1 = self.bn.batch_norm(f"{kind}_bn_1_{bid}")
        # Flat containers (Keras tracks them); path k is block k // 2, side k % 2.
        self.path_ops = []
        self.path_drops = {}
        self.block_norms = {}
        for b, block in enumerate(genotype.blocks):
            for side, index, op_name in zip(("left", "right"), block.inputs, block.ops):
                strides = self.strides if index < 2 else 1
                self.path_ops.append(make_op(op_name, filters, strides, f"{kind}_{side}{b + 1}_{bid}", self.bn))
                if self.drop_path_max_rate > 0 and op_name != "identity":
                    self.path_drops[str(len(self.path_ops) - 1)] = ScheduledDropPath(
                        self.drop_path_max_rate, name=f"{kind}_drop_path_{side}{b + 1}_{bid}"
                    )
            if block.combine == "add_layernorm":
                self.block_norms[str(b)] = layers.GroupNormalization(
                    groups=1, epsilon=bn_epsilon, name=f"{kind}_layernorm_{b + 1}_{bid}"
                )
            elif block.combine == "add_instancenorm":
                self.block_norms[str(b)] = layers.GroupNormalization(
                    groups=-1, epsilon=bn_epsilon, name=f"{kind}_instancenorm_{b + 1}_{bid}"
                )

    # --- shapes ----------------------------------------------------------------------------
    @staticmethod
    def _split_shapes(input_shape):
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
            if len(input_shape) != 2:
                raise ValueError(f"A cell takes [h_i, h_(i-1)] or h_i alone. Received {len(input_shape)} inputs")
            return tuple(input_shape[0]), tuple(input_shape[1])
        return tuple(input_shape), None

    def build(self, input_shape):
        x_shape, p_shape = self._split_shapes(input_shape)
        if len(x_shape) != 4 or (p_shape is not None and len(p_shape) != 4):
            raise ValueError(f"{self.name}: expects 4-D (NHWC) inputs. Received shapes: {input_shape}")
        if p_shape is None:
            # First cell of a network: h_(i-1) is h_i itself, unadjusted (slim and Keras).
            self.adjust = None
        elif self._prev_is_larger(x_shape, p_shape):
            self.adjust = FactorizedReduction(self.filters, self.block_id, self.bn)
        elif p_shape[-1] != self.filters:
            self.adjust = Projection(self.filters, self.block_id, self.bn)
        else:
            self.adjust = None
        self.loose_end_reductions = {}
        # Build every sub-layer by running the cell once on symbolic tensors.
        x = keras.KerasTensor(x_shape)
        self._forward(x, x if p_shape is None else keras.KerasTensor(p_shape), training=False, building=True)
        self.built = True

    def _prev_is_larger(self, x_shape, p_shape) -> bool:
        x_size, p_size = _spatial(x_shape), _spatial(p_shape)
        if None in x_size or None in p_size:
            return bool(self.reduce_prev)
        if p_size == x_size:
            larger = False
        elif tuple(-(-s // 2) for s in p_size) == x_size:
            larger = True
        else:
            raise ValueError(
                f"{self.name}: the previous input's spatial size {p_size} must equal the current input's "
                f"{x_size} or be twice it"
            )
        if self.reduce_prev is not None and self.reduce_prev != larger:
            raise ValueError(f"{self.name}: reduce_prev={self.reduce_prev} contradicts the input sizes {x_size} and {p_size}")
        return larger

    def compute_output_shape(self, input_shape):
        x_shape, p_shape = self._split_shapes(input_shape)
        spatial = tuple(None if s is None else -(-s // self.strides) for s in _spatial(x_shape))
        p_channels = x_shape[-1] if p_shape is None else self.filters  # adjusted, or already `filters`
        channels = sum(self._state_channels(p_channels)[i] for i in self.genotype.concat)
        return (x_shape[0],) + spatial + (channels,)

    def _state_channels(self, p_channels: int) -> list[int]:
        channels = [self.filters, p_channels]
        for block in self.genotype.blocks:
            channels.append(2 * self.filters if block.combine == "concat" else self.filters)
        return channels

    # --- forward ----------------------------------------------------------------------------
    def call(self, inputs, training=None):
        x, p = (inputs[0], inputs[1]) if isinstance(inputs, (list, tuple)) else (inputs, inputs)
        return self._forward(x, p, training=training)

    def _forward(self, x, p, training=None, building=False):
        if self.adjust is not None:
            p = self.adjust(p, training=training)
        h = conv_norm(self.conv_1, self.bn_1, keras.ops.relu(x), training)
        states = [h, p]
        for b, block in enumerate(self.genotype.blocks):
            paths = []
            for side, index in enumerate(block.inputs):
                k = 2 * b + side
                y = self.path_ops[k](states[index], training=training)
                if str(k) in self.path_drops:
                    y = self.path_drops[str(k)](y, training=training)
                paths.append(y)
            if block.combine == "concat":
                out = keras.ops.concatenate(paths, axis=-1)
            else:
                out = paths[0] + paths[1]
                if str(b) in self.block_norms:
                    out = self.block_norms[str(b)](out)
            states.append(out)
        target = _spatial(states[-1].shape)
        loose = []
        for index in self.genotype.concat:
            state = states[index]
            if _spatial(state.shape) != target:
                if building:
                    self.loose_end_reductions[str(index)] = FactorizedReduction(
                        self.filters, f"{self.block_id}_loose_{index}", self.bn
                    )
                state = self.loose_end_reductions[str(index)](state, training=training)
            loose.append(state)
        return loose[0] if len(loose) == 1 else keras.ops.concatenate(loose, axis=-1)

    # --- serialisation ----------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "genotype": self.genotype.to_dict(),
                "cell_type": self.genotype.cell_type,
                "filters": self.filters,
                "block_id": self.block_id,
                "drop_path_max_rate": self.drop_path_max_rate,
                "bn_momentum": self.bn_momentum,
                "bn_epsilon": self.bn_epsilon,
                "weight_decay": self.weight_decay,
                "reduce_prev": self.reduce_prev,
            }
        )
        return config
