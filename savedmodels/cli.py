"""`nasnet export`: write a served-and-reusable SavedModel in TF Serving's versioned layout."""

from __future__ import annotations

EMA_CHOICES = {"auto": "auto", "yes": True, "no": False}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model as a SavedModel for TF Serving and TF Hub-style fine-tuning",
        description=(
            "Write DIR/VERSION/ with the serving signatures serving_default (float images 0..255), "
            "serving_bytes (encoded JPEG/PNG) and features, a fine-tunable __call__ for "
            "hub.KerasLayer(trainable=True), and model_card.json. See docs/serving.md."
        ),
    )
    parser.add_argument("--model", required=True,
                        help="a variant name (mobile, large, cifar_6@768, ...), a .keras file, "
                             "or a genotype .json (with --variant and --weights)")
    parser.add_argument("--out", required=True, help="the model's base directory (TF Serving's model_base_path)")
    parser.add_argument("--version", type=int, default=None,
                        help="version number (default: one more than the highest existing version, 1 if none)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version directory")
    parser.add_argument("--weights", default=None, help="weights file to load into the built model")
    parser.add_argument("--variant", default=None, help="skeleton for a genotype .json; recorded in the model card")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="constructor override for a variant or genotype, e.g. --set classes=5 (repeatable)")
    parser.add_argument("--backbone", action="store_true",
                        help="__call__ returns feature maps by level ('2'..'5') instead of the classifier output")
    parser.add_argument("--frozen-batchnorm", action="store_true",
                        help="__call__(training=True) uses BatchNorm's moving statistics (scale/offset still "
                             "train): for fine-tuning with small batches, e.g. detection")
    parser.add_argument("--class-names", default=None, help="JSON list or text file (one name per line)")
    parser.add_argument("--top-k", type=int, default=5, help="classes returned by the serving signatures (default: 5)")
    parser.add_argument("--ema", choices=sorted(EMA_CHOICES), default="auto",
                        help="export the optimizer's moving averages (default auto: when the model has them)")
    parser.add_argument("--preprocessing", choices=("scale", "standardize"), default="scale",
                        help="what the network was trained on: scale (x / 127.5 - 1; keras.applications, the "
                             "ImageNet recipe; default) or standardize (per-image whitening; the CIFAR recipe, "
                             "search children, the demo)")
    from savedmodels import deploy_cli

    deploy_cli.add_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from nasnet_keras.overrides import parse_overrides
    from savedmodels import deploy_cli, model_card, model_resolver

    class_names = model_card.read_class_names(args.class_names) if args.class_names else None
    model, variant = model_resolver.load(
        args.model, weights=args.weights, variant=args.variant, overrides=parse_overrides(args.overrides)
    )
    result = deploy_cli.export(
        args,
        model,
        args.out,
        version=args.version,
        overwrite=args.overwrite,
        class_names=class_names,
        ema=EMA_CHOICES[args.ema],
        variant=variant,
        source=args.model,
        preprocessing=args.preprocessing,
        saved_model_options=dict(kind="backbone" if args.backbone else "auto", top_k=args.top_k,
                                 frozen_batchnorm=args.frozen_batchnorm),
    )
    if args.format != "saved_model":
        return 0
    card = result.card
    print(f"exported {card['kind']} {card['name']!r} ({card['weights']} weights, {card['params']:,} params) "
          f"to {result.path}")
    print("signatures: " + ", ".join(sorted(card["signatures"])) + "; check with: "
          f"saved_model_cli show --dir {result.path} --all")
    return 0
