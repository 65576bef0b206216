"""`nasnet train`: the paper's recipes, one command away.

    nasnet train --model cifar_6@768 --dataset cifar10 --directory runs/cifar
    nasnet train --model mobile --dataset imagenet2012 --manual-dir ~/imagenet --directory runs/mobile
    nasnet train --model found.json --base-variant cifar_6@768 --dataset cifar10 --set epochs=20 \\
        --directory runs/found
    nasnet train --model mobile --weights imagenet --dataset cifar10 --recipe cifar --image-size 224 \\
        --set epochs=5 --directory runs/finetune

Re-running the same command in the same directory resumes from its last checkpoint.

Several machines: the same command on each, with TF_CONFIG naming the cluster and the
task (see docs/distributed_training.md); --strategy auto then trains with
MultiWorkerMirroredStrategy. A worker whose peer failed exits with status 75: restart
every worker and the job resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

from nasnet_keras.training.distribution import DEFAULT_COLLECTIVE_TIMEOUT, PEER_FAILURE_EXIT_CODE, STRATEGIES


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a NASNet with the paper's CIFAR or ImageNet recipe (resumable)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True,
                        help="a named variant (mobile, large, cifar_6@768, ...) or a genotype (name or JSON file)")
    parser.add_argument("--dataset", required=True, help="dataset name: cifar10, cifar100, fashion_mnist, imagenet2012")
    parser.add_argument("--directory", required=True, help="run directory (checkpoints, logs, final.keras)")
    parser.add_argument("--recipe", default=None, help="cifar | imagenet | imagenet_large (default: the variant's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="change a recipe field, e.g. --set epochs=20 --set batch_size=64 (repeatable)")
    parser.add_argument("--base-variant", default=None, help="skeleton for a genotype --model (default by dataset)")
    parser.add_argument("--num-blocks", type=int, default=None, help="override N (normal cells per stack)")
    parser.add_argument("--filters", type=int, default=None, help="override the CIFAR skeleton's first-stack filters")
    parser.add_argument("--penultimate-filters", type=int, default=None, help="override F")
    parser.add_argument("--image-size", type=int, default=None, help="model input size (default: the recipe's)")
    parser.add_argument("--weights", default=None,
                        help="fine-tune from 'imagenet', a keras.applications .h5 file or a .keras model")
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_float16 compute")
    parser.add_argument("--strategy", default="auto", choices=STRATEGIES,
                        help="auto (default): multi-worker if TF_CONFIG names several workers, mirrored if several "
                             "GPUs, else one-device; tpu: TPUStrategy. The recipe's batch_size is the global batch")
    parser.add_argument("--multi-gpu", action="store_true",
                        help="deprecated: the same as --strategy mirrored")
    parser.add_argument("--sync-batch-norm", action="store_true",
                        help="BatchNorm statistics over the global batch (all replicas), not each replica's share")
    parser.add_argument("--collective-timeout", type=float, default=DEFAULT_COLLECTIVE_TIMEOUT, metavar="SECONDS",
                        help="multi-worker: give up when the other workers do not answer a collective for this long "
                             "(0: wait forever; default %(default)s)")
    parser.add_argument("--tpu", default=None, help="--strategy tpu: the TPU's name (default: $TPU_NAME, else local)")
    parser.add_argument("--jit-compile", choices=("auto", "on", "off"), default="auto", help="XLA for the train step")
    parser.add_argument("--overwrite", action="store_true", help="replace another run found in --directory")
    parser.add_argument("--save-every-steps", type=int, default=None,
                        help="also checkpoint every N steps (default: every epoch)")
    parser.add_argument("--eval-every-epochs", type=int, default=0,
                        help="also evaluate every N epochs during training (default: at the end only)")
    parser.add_argument("--seed", type=int, default=0, help="seeds initial weights, drop-path masks and data order")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                        help="Keras verbosity (default: progress bars)")
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    parser.add_argument("--data-dir", default=None, help="where the dataset lives (IDX files or a TFDS data_dir)")
    parser.add_argument("--manual-dir", default=None,
                        help="directory holding ImageNet's manually downloaded archives (TFDS imagenet2012)")
    parser.set_defaults(func=run)


def config_from_args(args):
    from nasnet_keras.overrides import parse_overrides
    from nasnet_keras.training.trainer import TrainConfig

    return TrainConfig(
        model=args.model,
        dataset=args.dataset,
        directory=args.directory,
        recipe=args.recipe,
        recipe_overrides=parse_overrides(args.overrides),
        base_variant=args.base_variant,
        architecture={"num_blocks": args.num_blocks, "filters": args.filters,
                      "penultimate_filters": args.penultimate_filters},
        image_size=args.image_size,
        weights=args.weights,
        mixed_precision=args.mixed_precision,
        strategy=args.strategy,
        multi_gpu=args.multi_gpu,
        sync_batch_norm=args.sync_batch_norm,
        collective_timeout=args.collective_timeout or None,
        tpu=args.tpu,
        jit_compile={"auto": "auto", "on": True, "off": False}[args.jit_compile],
        overwrite=args.overwrite,
        save_every_steps=args.save_every_steps,
        eval_every_epochs=args.eval_every_epochs,
        seed=args.seed,
        verbose="auto" if args.verbose is None else args.verbose,
        tensorboard=not args.no_tensorboard,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
    )


def weights_digest(model) -> str:
    """sha256 of the model's weights, in order: equal on every worker of a job that trained in lockstep."""
    import keras
    import numpy as np

    digest = hashlib.sha256()
    for variable in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(variable)).tobytes())
    return digest.hexdigest()


def run(args) -> int:
    from nasnet_keras.training.distribution import PeerFailure
    from nasnet_keras.training.trainer import train

    if args.multi_gpu:
        print("nasnet train: --multi-gpu is deprecated; use --strategy mirrored", file=sys.stderr)
    try:
        result = train(config_from_args(args))
    except PeerFailure as failure:
        print(f"nasnet train: {failure}", file=sys.stderr)
        return PEER_FAILURE_EXIT_CODE
    summary = {
        "directory": result.directory,
        "resumed": result.resumed,
        "start_step": result.start_step,
        "final_step": result.final_step,
        "total_steps": result.total_steps,
        "weights_sha256": weights_digest(result.model),
        **{f"eval_{k}": round(v, 6) for k, v in result.metrics.items()},
    }
    print(json.dumps(summary, indent=2, allow_nan=False))  # strict JSON: the trainer refuses non-finite metrics
    return 0
