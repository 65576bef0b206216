"""`nasnet demo`: the whole NASNet pipeline, end to end, offline, in minutes on a CPU.

    nasnet demo --directory demo_out        (what `make demo` runs)

1. The paper's named models: parameters and Mult-Adds beside the paper's figures
   (`nasnet_keras.variants_cli.print_table`).
2. The search strategies compared on NAS-Bench-Graph's measured accuracies (seconds),
   then a small architecture search with the default strategy (regularized evolution) on real
   Fashion-MNIST images read from the Debian package's IDX files: tiny children, a few
   hundred images of the *training* split, held-out images of the training split as reward.
3. The best cell trained longer on more images, then evaluated once on the *test* split.
4. Its pictures (Figure 4 style), the search curve (Figure 6 style), its genotype JSON
   and the trained model as a `.keras` file, reloaded and checked.

This module sits above every layer of the package (it drives `nasnet_keras`' data and
models, `tuner`'s search and training of children), which is why it is not inside any of
them; `nasnet` finds it through the `nasnet_keras.commands` entry point `demo`.

The sizes are far below the paper's (20,000 children of 20 epochs each on 500 GPUs):
the point is that every stage runs, not that a 10-trial search finds NASNet-A. With a
handful of one-epoch children the reward is mostly noise; the tabular comparison shows
the strategy's effect, and `benchmarks/strategies.py` measures it (docs/search_strategies.md).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
import threading
import time

from nasnet_keras.fileio import atomic_path, write_json

DEFAULT_DIRECTORY = "demo_out"


def register(subparsers):
    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline on a small Fashion-MNIST task (offline, minutes on a CPU)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--directory", default=DEFAULT_DIRECTORY, help=f"output directory (default {DEFAULT_DIRECTORY})")
    parser.add_argument("--data-dir", default=None, help="directory with the Fashion-MNIST IDX files "
                                                          "(default: $NASNET_KERAS_DATA_DIR, then the Debian package's)")
    parser.add_argument("--trials", type=int, default=10, help="children the search samples (default 10)")
    parser.add_argument("--num-blocks", type=int, default=3,
                        help="B, blocks per cell (paper: 5; 3 keeps the demo within minutes on a CPU)")
    parser.add_argument("--subset", type=int, default=384, help="training images per child (default 384)")
    parser.add_argument("--validation-size", type=int, default=256, help="held-out training images (default 256)")
    parser.add_argument("--child-epochs", type=int, default=1, help="epochs per child (default 1)")
    parser.add_argument("--final-subset", type=int, default=2000, help="training images for the final model")
    parser.add_argument("--final-epochs", type=int, default=3, help="epochs of the final model (default 3)")
    parser.add_argument("--test-size", type=int, default=2000, help="test images for the final evaluation")
    parser.add_argument("--population-size", type=int, default=3,
                        help="evolution's population (default 20; 3 so a 10-child demo evolves at all)")
    parser.add_argument("--skip-table", action="store_true", help="do not build the named variants for the table")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run_demo)
    return parser


def _stage(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.perf_counter()


def _copy(source: str, destination: str) -> None:
    with atomic_path(destination) as temporary:
        shutil.copyfile(source, temporary)


# Native (C++) log lines of TensorFlow that TF_CPP_MIN_LOG_LEVEL does not silence: absl's
# INFO/WARNING lines (XLA's "Compiled cluster using XLA!", printed when the controller's
# sampler is first compiled), its note about InitializeLog, tsl's I/W lines, and the CUDA
# probe's "failed call to cuInit" on a machine without a GPU (which is no error here).
_NATIVE_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IW] |E \S*cuda_platform\.cc:\d+\] failed call to cuInit))"
)


@contextlib.contextmanager
def _without_native_log_noise():
    """Filter the process's stderr (file descriptor 2) so only those lines are dropped.

    Python's own warnings and errors, Keras' output and any other native message still
    appear (they pass through the filter in order); stdout is untouched.
    """
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not _NATIVE_NOISE.match(line.decode("utf-8", "replace")):
                    os.write(original, line)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end: the filter reads to the end
        thread.join(timeout=10)
        os.close(original)


def run_demo(args) -> int:
    """The `demo` sub-command; returns the exit code."""
    from nasnet_keras.checks import check_int

    for flag in ("trials", "num_blocks", "subset", "validation_size", "child_epochs", "final_subset", "final_epochs",
                 "test_size", "population_size"):  # before anything runs or is written
        check_int(f"--{flag.replace('_', '-')}", getattr(args, flag), minimum=1)
    with _without_native_log_noise():
        return _run(args)


def _run(args) -> int:
    start = time.perf_counter()
    timings: dict[str, float] = {}
    directory = args.directory
    os.makedirs(directory, exist_ok=True)

    if not args.skip_table:
        t = _stage("1. The paper's NASNet-A variants: our parameter and Mult-Add counts vs. the paper")
        from nasnet_keras.variants_cli import print_table

        print_table()
        timings["variants_table"] = time.perf_counter() - t

    import keras
    import numpy as np

    from nasnet_keras import data
    from tuner.children import ChildConfig, train_child
    from tuner.oracles import make_oracle
    from tuner.search import NASTuner
    from tuner.space import SearchSpace

    from tuner.strategy_demo import compare_on_tabular

    t = _stage("2a. Search strategies on NAS-Bench-Graph (measured accuracies, looked up through the real oracles)")
    compare_on_tabular()
    timings["tabular_strategies"] = time.perf_counter() - t

    t = _stage("2b. Architecture search with the default strategy (evolution) on Fashion-MNIST (training split only)")
    name = "fashion_mnist"
    info = data.info(name)
    train, validation = data.search_split(name, validation_size=args.validation_size, subset=args.subset,
                                          seed=args.seed, data_dir=args.data_dir)
    space = SearchSpace(num_blocks=args.num_blocks)
    # Tiny children: N=1, F=8, 12 steps of 32 images at a high initial rate (few steps: on
    # a CPU an eager step of a NASNet child costs about a second, and tracing it into a
    # graph costs tens of seconds, so short children run eagerly - ChildConfig "auto").
    # BatchNorm's moving averages need tens of steps at momentum 0.9 to match the weights;
    # after 12 steps many children would score one class only, so they use 0.5 (measured
    # on three cells: held-out accuracy 0.09-0.20 at 0.9, 0.17-0.29 at 0.5).
    child = ChildConfig(classes=info.num_classes, num_cells=1, filters=8, epochs=args.child_epochs, batch_size=32,
                        learning_rate=0.1, bn_momentum=0.5, seed=args.seed)
    oracle = make_oracle("evolution", space, max_trials=args.trials, seed=args.seed + 1,
                         population_size=args.population_size, sample_size=max(1, args.population_size // 2),
                         max_consecutive_failed_trials=args.trials)
    print(f"{args.trials} children: B={args.num_blocks}, N=1, F=8, {args.child_epochs} epoch(s) on {args.subset} "
          f"images, scored on {args.validation_size} held-out training images", flush=True)
    tuner = NASTuner(oracle, child, search_space=space, strategy="evolution", directory=directory, overwrite=True,
                     fit_verbose=0, run_info={"dataset": name, "subset": args.subset,
                                              "validation_size": args.validation_size, "seed": args.seed})
    from nasnet_keras.errors import debug_requested
    from tuner.keras_tuner_internals import failed_trial_tracebacks
    from tuner.search import stopped_by_failures

    try:
        # Each failed child gets the tuner's one-line summary; its traceback only with --debug.
        with failed_trial_tracebacks(debug_requested(getattr(args, "debug", False))):
            report = tuner.search(train, validation)
    except RuntimeError as error:
        if not stopped_by_failures(error):
            raise
        if not tuner.best_genotypes(1):
            raise tuner.no_child_completed(error) from error
        print(f"Search stopped early: {str(error).splitlines()[0]}", flush=True)
        report = tuner.write_report()
    best = tuner.best_genotypes(1)
    if not best:
        raise tuner.no_child_completed()
    genotype, search_score, trial_id = best[0]
    print(f"Best cell: trial {trial_id}, held-out accuracy {search_score:.4f}\n{genotype}")
    timings["search"] = time.perf_counter() - t

    t = _stage("3. The best cell, trained longer on more images (graph mode), then evaluated on the test split")
    final_train, final_val = data.search_split(name, validation_size=args.validation_size, subset=args.final_subset,
                                               seed=args.seed, data_dir=args.data_dir)
    final_config = child.replace(filters=12, epochs=args.final_epochs, batch_size=64, bn_momentum=0.9,
                                 run_eagerly=False)
    result = train_child(genotype, final_train, final_val, final_config, verbose=2, keep_model=True)
    model = result.model
    test = data.pipeline(data.load(name, f"test[:{args.test_size}]", args.data_dir), 250, training=False)
    test_loss, test_accuracy = model.evaluate(test, verbose=0)
    print(f"Final model: {result.params:,} parameters, held-out accuracy {result.accuracy:.4f}, "
          f"TEST accuracy {test_accuracy:.4f} on {args.test_size} test images "
          f"(chance: {1 / info.num_classes:.2f})", flush=True)
    timings["final_training"] = time.perf_counter() - t

    t = _stage("4. Pictures, genotype and the saved model")
    paths = {
        "best_genotype": os.path.join(directory, "best_genotype.json"),
        "best_cells": os.path.join(directory, "best_cells.png"),
        "search_curve": report["search_curve"],
        "model": os.path.join(directory, "final_model.keras"),
        "summary": os.path.join(directory, "summary.json"),
    }
    _copy(report["best_genotype"], paths["best_genotype"])
    _copy(report["best_cells"], paths["best_cells"])
    with atomic_path(paths["model"]) as temporary:
        model.save(temporary)
    reloaded = keras.models.load_model(paths["model"])
    images = next(iter(test))[0][:16]
    same = bool(np.allclose(model.predict(images, verbose=0), reloaded.predict(images, verbose=0), atol=1e-5))
    print(f"Saved {paths['model']} and reloaded it: predictions {'identical' if same else 'DIFFER'}")
    timings["save_and_reload"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start
    summary = {
        "dataset": name,
        "search": {"strategy": "evolution", "trials": args.trials, "cache_hits": oracle.num_cache_hits,
                   "num_blocks": args.num_blocks,
                   "child_config": child.to_dict(), "best_trial": trial_id, "best_search_score": search_score},
        "genotype": genotype.to_dict(),
        "genotype_id": genotype.id,
        "final": {"config": final_config.to_dict(), "params": result.params, "heldout_accuracy": result.accuracy,
                  "test_accuracy": float(test_accuracy), "test_loss": float(test_loss), "test_images": args.test_size},
        "reload_identical": same,
        "timings_s": {key: round(value, 1) for key, value in timings.items()},
        "files": paths,
    }
    write_json(paths["summary"], summary)
    print("\nFiles:")
    for key, path in paths.items():
        print(f"  {key}: {path}")
    print("Stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    return 0 if same else 1
