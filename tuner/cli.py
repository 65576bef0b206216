"""`nasnet search`: architecture search from the command line.

    nasnet search --dataset cifar10 --strategy ppo --max-trials 1000 --directory runs/c10
    nasnet search --dataset fashion_mnist --strategy random --max-trials 12 --epochs 1 \\
        --filters 8 --num-cells 1 --subset 500 --validation-size 200 --directory runs/fm
    nasnet search ... --top-k 5 --final-epochs 60          # the paper's final stage
    nasnet search ... --max-trials 0 --genotype a.json --final-epochs 60   # retrain given cells

Defaults are the paper's search recipe (CIFAR skeleton with N = 2, 20 epochs, SGD with
momentum and cosine decay, 5,000 held-out training images). Running the command again
with the same `--directory` resumes the search (keras-tuner's `overwrite=False`); several
strategies may share a directory and are then drawn together in `search_curve.png`.
Distributed search uses keras-tuner's own environment variables (`KERASTUNER_TUNER_ID`,
`KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`): start the same command once with a
tuner id containing "chief" and once per worker.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from nasnet_keras.checks import check_choice, check_int

DEFAULT_DIRECTORY = os.path.join("runs", "search")


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "search",
        help="search NASNet cells (PPO controller or random search) with keras-tuner",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = parser.add_argument_group("data (children train and are scored on the training split only)")
    data.add_argument("--dataset", default="cifar10",
                      help="dataset name (cifar10, cifar100, fashion_mnist, mnist, imagenet2012); default cifar10")
    data.add_argument("--data-dir", default=None,
                      help="directory with IDX files or a TFDS data_dir (default: $NASNET_KERAS_DATA_DIR, then "
                           "system locations)")
    data.add_argument("--no-download", action="store_true", help="never let TFDS download")
    data.add_argument("--validation-size", type=int, default=5000,
                      help="held-out training images that score children (paper: 5000)")
    data.add_argument("--subset", type=int, default=None,
                      help="train children on at most this many images (tiny proxy runs)")
    data.add_argument("--image-size", type=int, default=None, help="resize images to this size (proxy runs)")

    search = parser.add_argument_group("search")
    search.add_argument("--strategy", default="evolution",
                        help="evolution (regularized evolution; the default: best at 100-500 children on "
                             "NAS-Bench-Graph, docs/search_strategies.md), ppo (the paper's controller) or random")
    search.add_argument("--preset", default="default", choices=("default", "paper"),
                        help="strategy settings: 'default' (chosen for 100-500 children) or 'paper'")
    search.add_argument("--population-size", type=int, default=None, help="evolution: P (default 20, paper 100)")
    search.add_argument("--sample-size", type=int, default=None, help="evolution: tournament size S (default 5)")
    search.add_argument("--target-mult-adds", type=float, default=None,
                        help="hardware-aware reward: accuracy x (Mult-Adds / target)^w, Mult-Adds of the final "
                             "model (--final-cells, --final-filters) counted without training")
    search.add_argument("--target-params", type=float, default=None, help="the same with the final model's parameters")
    search.add_argument("--cost-weight", type=float, default=-0.07, help="w of the cost-aware reward (MnasNet: -0.07)")
    search.add_argument("--final-cells", type=int, default=6, help="N of the final model for the cost (default 6)")
    search.add_argument("--final-filters", type=int, default=32, help="F of the final model for the cost (default 32)")
    search.add_argument("--max-trials", type=int, default=100,
                        help="children to sample in total, including earlier runs in --directory "
                             "(paper: 20,000); default 100")
    search.add_argument("--num-blocks", type=int, default=5, help="B, blocks per cell (paper: 5)")
    search.add_argument("--seed", type=int, default=0, help="seeds the oracle and the held-out split")
    search.add_argument("--max-failures", type=int, default=10,
                        help="stop after this many consecutive failed children (NaN or out of memory)")
    search.add_argument("--controller-batch", type=int, default=None,
                        help="PPO: architectures per controller update (paper: 20)")
    search.add_argument("--controller-lr", type=float, default=None, help="PPO: controller learning rate "
                                                                           "(paper: 0.00035)")

    # The defaults are the recipe's own, read from where it is declared (ChildConfig).
    from tuner.children import ChildConfig

    recipe = ChildConfig()
    child = parser.add_argument_group("children (the paper's recipe by default)")
    for flag, kind, about in (
        ("--epochs", int, "epochs per child (paper: 20; default %(default)s)"),
        ("--filters", int, "F, filters of the first stack's cells (default %(default)s)"),
        ("--num-cells", int, "N, Normal cells per stack (paper: 2; default %(default)s)"),
        ("--batch-size", int, "images per training step of a child (default %(default)s)"),
        ("--learning-rate", float, "initial rate of the cosine decay (default %(default)s)"),
        ("--weight-decay", float, "L2 weight decay (TF-slim convention; default %(default)s)"),
    ):
        child.add_argument(flag, type=kind, default=getattr(recipe, flag[2:].replace("-", "_")), help=about)
    child.add_argument("--run-eagerly", choices=("auto", "yes", "no"), default="auto",
                       help="eager execution for children; auto: for tiny children on CPU, where tracing "
                            "costs more than training")
    child.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras progress output")

    output = parser.add_argument_group("output and the final stage")
    output.add_argument("--directory", default=DEFAULT_DIRECTORY, help=f"where results go (default {DEFAULT_DIRECTORY})")
    output.add_argument("--overwrite", action="store_true", help="discard this strategy's earlier results in "
                                                                 "--directory instead of resuming")
    output.add_argument("--top-k", type=int, default=0,
                        help="retrain the K best unique architectures for --final-epochs and pick the best "
                             "(the paper retrains its top 250)")
    output.add_argument("--final-epochs", type=int, default=None, help="epochs of that retraining (default 3 x --epochs)")
    output.add_argument("--genotype", action="append", default=[], metavar="FILE.json",
                        help="also retrain this genotype (repeatable), e.g. NASNet-A or another run's best")
    from tuner.distributed import options as distributed_options

    distributed_options.add_arguments(parser)
    parser.set_defaults(func=run_search)
    return parser


def _load_genotypes(paths):
    from nasnet_keras.genotype import Genotype

    genotypes = []
    for path in paths:
        if not os.path.isfile(path):
            raise ValueError(f"--genotype {path}: no such file (expected a genotype JSON written by Genotype.save)")
        try:
            genotype = Genotype.load(path)
        except ValueError as error:
            raise ValueError(f"--genotype: invalid genotype JSON: {error}") from None
        if genotype.name is None:
            genotype = Genotype(genotype.normal, genotype.reduction, name=os.path.basename(path))
        genotypes.append(genotype)
    return genotypes


def run_search(args) -> int:
    """The `search` sub-command; returns the exit code (ValueErrors are printed by `nasnet`)."""
    from tuner.oracles import STRATEGIES

    check_choice("--strategy", args.strategy, STRATEGIES)
    check_int("--max-trials", args.max_trials, minimum=0)
    check_int("--max-failures", args.max_failures, minimum=1)
    check_int("--top-k", args.top_k, minimum=0)
    check_int("--final-epochs", args.final_epochs, minimum=1, allow_none=True)
    extra = _load_genotypes(args.genotype)

    from tuner.distributed import launcher, options as distributed_options, protocol, role, use_chief_threads

    if args.workers is not None:
        return launcher.launch(args)
    distributed_options.ensure_tuner_id()
    use_chief_threads()  # before the oracle's controller runs TensorFlow's first op
    distributed = distributed_options.config_from_args(args)
    if role() == "worker" and args.overwrite:
        raise ValueError("--overwrite on a worker would delete the chief's search directory; give it to the chief")
    max_retries = args.max_retries if args.max_retries is not None else (1 if role() != "single" else 0)

    from nasnet_keras import data
    from tuner.children import ChildConfig
    from tuner.oracles import make_oracle
    from tuner.keras_tuner_internals import is_chief_oracle, is_distributed_worker
    from tuner.search import NASTuner, stopped_by_failures
    from tuner.space import SearchSpace

    info = data.info(args.dataset)
    config = ChildConfig(
        classes=info.num_classes, num_cells=args.num_cells, filters=args.filters, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate, weight_decay=args.weight_decay,
        image_size=args.image_size, run_eagerly={"auto": "auto", "yes": True, "no": False}[args.run_eagerly],
    )
    space = SearchSpace(num_blocks=args.num_blocks)
    # None leaves each strategy's own defaults; make_oracle refuses the options of another strategy.
    oracle = make_oracle(args.strategy, space, preset=args.preset, max_trials=args.max_trials, seed=args.seed,
                         max_consecutive_failed_trials=args.max_failures, max_retries_per_trial=max_retries,
                         batch_size=args.controller_batch, learning_rate=args.controller_lr,
                         population_size=args.population_size, sample_size=args.sample_size)
    run_info = {"dataset": args.dataset, "validation_size": args.validation_size, "subset": args.subset,
                "seed": args.seed}
    split = {}

    def search_data():
        # Loaded on demand: the chief of a distributed search only serves the oracle.
        if not split:
            split["train"], split["validation"] = data.search_split(
                args.dataset, validation_size=args.validation_size, subset=args.subset, seed=args.seed,
                data_dir=args.data_dir, download=False if args.no_download else None,
            )
        return split["train"], split["validation"]

    # Before the tuner touches --directory, so a missing dataset fails fast and leaves nothing.
    train, validation = (None, None) if is_chief_oracle() else search_data()
    cost_target = None
    if args.target_mult_adds is not None or args.target_params is not None:
        from tuner.cost import CostTarget

        cost_target = CostTarget(mult_adds=args.target_mult_adds, params=args.target_params, weight=args.cost_weight,
                                 final_cells=args.final_cells, final_filters=args.final_filters,
                                 image_size=args.image_size or info.image_shape[0] or 224,
                                 channels=info.image_shape[2], classes=info.num_classes)
    try:
        tuner = NASTuner(oracle, config, search_space=space, strategy=args.strategy, run_info=run_info,
                         fit_verbose=args.verbose, directory=args.directory, overwrite=args.overwrite,
                         distributed=distributed, cost_target=cost_target)
    except protocol.ChiefUnavailableError as error:
        print(f"nasnet search: error: {error}", file=sys.stderr)
        return 1
    print(f"nasnet search: {args.strategy} on {args.dataset} "
          f"({'all' if args.subset is None else args.subset} training / {args.validation_size} held-out images "
          f"of the training split), B={args.num_blocks}, children N={args.num_cells} F={args.filters} "
          f"{args.epochs} epoch(s), up to {args.max_trials} trials -> {tuner.project_dir}", flush=True)
    start = time.perf_counter()
    try:
        # keras-tuner reads max_trials=0 as "no limit"; here 0 means "no search" (retrain only).
        report = tuner.search(train, validation) if args.max_trials else tuner.write_report()
    except protocol.ChiefUnavailableError as error:
        print(f"nasnet search: error: {error}", file=sys.stderr)
        return 1
    except RuntimeError as error:
        if not stopped_by_failures(error):
            raise
        print(f"nasnet search: stopped: {str(error).splitlines()[0]} (raise --max-failures to go on)",
              file=sys.stderr)
        report, code = tuner.write_report(), 1
    else:
        code = 0
    if is_distributed_worker():
        return code
    print(f"Search finished in {time.perf_counter() - start:.1f} s")
    for name, path in report.items():
        print(f"  {name}: {path}")
    if args.top_k or extra:
        final_epochs = args.final_epochs or 3 * args.epochs
        train, validation = search_data()
        results = tuner.retrain_top_k(train, validation, args.top_k, final_epochs, extra_genotypes=extra)
        if results and results[0]["status"] == "COMPLETED":
            best = results[0]
            print(f"Final genotype {best['genotype_id']} ({best['source']}): held-out accuracy "
                  f"{best['accuracy']:.4f} after {final_epochs} epochs")
            for name in ("final_genotype", "final_cells"):
                print(f"  {name}: {tuner.report[name]}")
        else:
            print("No retrained candidate completed", file=sys.stderr)
            code = code or 1
    return code
