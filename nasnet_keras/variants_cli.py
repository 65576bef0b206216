"""`nasnet profile` and `nasnet variants`: the accounting of `profiling` printed for the named
variants of `variants`, beside the paper's figures (Tables 1-2; docs/accounting.md).

Kept apart from both so that the value modules (`profiling` counts, `variants` names
models) know nothing of printing or of each other.
"""

from __future__ import annotations

from typing import Any

from nasnet_keras import variants
from nasnet_keras.profiling import format_count, profile


def profile_variant(variant: variants.Variant, include_aux: bool = False) -> dict[str, Any]:
    """Build `variant`, count it, release it: {"variant", "params", "trainable", "mult_adds"}."""
    import keras

    model = variant.build(aux_head=include_aux)
    result = profile(model)
    keras.backend.clear_session()
    return {"variant": variant, "params": result.params, "trainable": result.trainable_params,
            "mult_adds": result.mult_adds}


def _deviation(ours: float, paper: float | None) -> str:
    return "-" if not paper else f"{100.0 * (ours - paper) / paper:+.1f}%"


def print_rows(rows: list[dict[str, Any]]) -> None:
    header = (f"{'variant':14s} {'N @ F':10s} {'input':>5s} | {'params':>8s} {'paper':>6s} {'diff':>7s} | "
              f"{'Mult-Adds':>9s} {'paper':>6s} {'diff':>7s} | paper top-1/top-5 or error")
    print(header)
    print("-" * len(header))
    for row in rows:
        v = row["variant"]
        print(
            f"{v.name:14s} {v.label:10s} {v.image_size:5d} | {format_count(row['params']):>8s} "
            f"{format_count(v.paper_params) if v.paper_params else '-':>6s} {_deviation(row['params'], v.paper_params):>7s} | "
            f"{format_count(row['mult_adds']):>9s} "
            f"{format_count(v.paper_mult_adds) if v.paper_mult_adds else '-':>6s} "
            f"{_deviation(row['mult_adds'], v.paper_mult_adds):>7s} | {v.paper_result}"
            + (f"  [{v.note}]" if v.note else "")
        )


def print_table(names=None) -> list[dict[str, Any]]:
    """Build every named variant, count it, print it beside the paper's figures."""
    rows = [profile_variant(variants.get(name)) for name in (names or variants.VARIANTS)]
    print_rows(rows)
    return rows


def _cmd_profile(args) -> int:
    if args.model.endswith(".keras"):
        from nasnet_keras.model_files import load_keras_model

        model = load_keras_model(args.model)  # a corrupt or missing file is an error naming it
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
        print_rows([profile_variant(variants.get(args.model), include_aux=args.aux)])
    return 0


def _cmd_variants(args) -> int:
    print_table(names=args.names or None)
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
