"""Accounting: parameters and Mult-Adds, the paper's cost measures (Tables 2-4).

Mult-Adds are counted from the TensorFlow graph of one forward pass at batch 1, so they
cover any Keras model (ours or keras.applications') the same way: every multiply-
accumulate of a convolution (standard, depthwise, dilated) and of a dense layer.
Pooling, BatchNorm, additions and activations are not counted, as is usual for the
paper's figure (its 564M for NASNet-A Mobile is matched this way).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class Profile:
    params: int
    trainable_params: int
    mult_adds: int
    input_shape: tuple

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def count_mult_adds(model, input_shape=None) -> int:
    """Multiply-accumulates of `model` for one image (inference graph, batch 1)."""
    import tensorflow as tf

    shape = tuple(input_shape or model.input_shape[1:])
    if any(s is None for s in shape):
        raise ValueError(f"Mult-Adds need a static input shape; received {shape}. Pass input_shape=(H, W, C).")

    @tf.function
    def forward(x):
        return model(x, training=False)

    graph = forward.get_concrete_function(tf.TensorSpec((1,) + shape, tf.float32)).graph
    total = 0
    for op in graph.get_operations():
        if op.type == "Conv2D":
            kh, kw, cin, _ = op.inputs[1].shape
            total += math.prod(op.outputs[0].shape[1:]) * kh * kw * cin
        elif op.type == "DepthwiseConv2dNative":
            kh, kw, _, _ = op.inputs[1].shape
            total += math.prod(op.outputs[0].shape[1:]) * kh * kw
        elif op.type in ("MatMul", "BatchMatMulV2"):
            a = op.inputs[0].shape
            transpose_a = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
            inner = a[-2] if transpose_a else a[-1]
            total += math.prod(op.outputs[0].shape) * inner
    return int(total)


def profile(model, input_shape=None) -> Profile:
    """Parameters (all / trainable; drop-path schedule scalars excluded) and Mult-Adds."""
    from nasnet_keras.drop_path import ScheduledDropPath

    def schedule_scalars(layer):
        own = len(layer.weights) if isinstance(layer, ScheduledDropPath) else 0
        return own + sum(schedule_scalars(child) for child in getattr(layer, "_layers", []))

    params = int(sum(np.prod(w.shape) for w in model.weights)) - schedule_scalars(model)
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    shape = tuple(input_shape or model.input_shape[1:])
    return Profile(params, trainable, count_mult_adds(model, shape), shape)


def format_count(value: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return str(int(value))


# --- CLI -------------------------------------------------------------------------------------
def _cmd_profile(args) -> int:
    from nasnet_keras import variants

    if args.model.endswith(".keras"):
        from nasnet_keras.model_files import load_keras_model

        model = load_keras_model(args.model)
        result = profile(model)
        print(f"{args.model}: params {result.params:,} ({format_count(result.params)}), "
              f"Mult-Adds {result.mult_adds:,} ({format_count(result.mult_adds)}) at {result.input_shape}")
    elif args.model.endswith(".json"):
        from nasnet_keras.genotype import as_genotype

        genotype = as_genotype(args.model)  # a missing or invalid file is an error naming it
        variant = variants.get(args.variant)
        result = profile(variant.build(genotype=genotype, aux_head=args.aux))
        print(f"{args.model} (genotype {genotype.name or ''}[{genotype.id}], B={genotype.num_blocks}) on the "
              f"{variant.name!r} skeleton ({variant.label}): params {result.params:,} ({format_count(result.params)}), "
              f"Mult-Adds {result.mult_adds:,} ({format_count(result.mult_adds)}) at {result.input_shape}")
    else:
        variant = variants.get(args.model)
        row = variants.profile_variant(variant, include_aux=args.aux)
        variants.print_rows([row])
    return 0


def _cmd_variants(args) -> int:
    from nasnet_keras import variants

    variants.print_table(names=args.names or None)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("profile", help="parameters and Mult-Adds of a named variant, a .keras file or a "
                                               "genotype JSON")
    p.add_argument("model", help="a named variant (see `nasnet variants`), a .keras file or a genotype .json file")
    p.add_argument("--variant", default="mobile",
                   help="skeleton (N @ F, input size) to build a genotype .json in (default: mobile)")
    p.add_argument("--aux", action="store_true", help="include the auxiliary head in the count")
    p.set_defaults(func=_cmd_profile)
    v = subparsers.add_parser("variants", help="the named variants with params and Mult-Adds beside the paper's")
    v.add_argument("names", nargs="*", help="only these variants")
    v.set_defaults(func=_cmd_variants)

