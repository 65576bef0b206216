"""The distributed-search options of `nasnet search` (one home for their flags and checks)."""

from __future__ import annotations

import argparse
import os

from tuner.distributed import protocol


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "distributed search (keras-tuner's chief/worker mode; see docs/distributed_search.md)")
    group.add_argument("--workers", type=int, default=None, metavar="N",
                       help="start a chief and N worker processes on this machine (one GPU each when there are "
                            "GPUs) and stream one line per finished trial")
    group.add_argument("--port", type=int, default=None,
                       help="with --workers: the chief's port on 127.0.0.1 (default: a free one)")
    group.add_argument("--lease-timeout", type=float, default=protocol.DEFAULT_LEASE_TIMEOUT, metavar="SECONDS",
                       help="chief: take a trial back from a worker not heard from for this long "
                            f"(default {protocol.DEFAULT_LEASE_TIMEOUT:g})")
    group.add_argument("--chief-timeout", type=float, default=protocol.DEFAULT_CHIEF_TIMEOUT, metavar="SECONDS",
                       help="worker: give up (exit 1) when the chief has not answered for this long "
                            f"(default {protocol.DEFAULT_CHIEF_TIMEOUT:g})")
    group.add_argument("--max-retries", type=int, default=None,
                       help="run a trial whose worker was lost (or that crashed) again at most this many times, "
                            "then mark it FAILED (default: 1 in a distributed search, 0 otherwise)")
    from tuner.distributed import auth

    auth.add_arguments(group)
    parser.set_defaults(search_parser=parser)


def ensure_tuner_id(log=print) -> None:
    """Give a worker started without KERASTUNER_TUNER_ID a unique generated id."""
    if "KERASTUNER_ORACLE_IP" in os.environ and not os.environ.get("KERASTUNER_TUNER_ID"):
        from tuner.distributed.worker import generate_tuner_id

        os.environ["KERASTUNER_TUNER_ID"] = generate_tuner_id()
        log(f"nasnet search: KERASTUNER_TUNER_ID not set; this worker is {os.environ['KERASTUNER_TUNER_ID']}")


def config_from_args(args):
    from nasnet_keras.checks import check_int
    from tuner.distributed import DistributedConfig, auth

    from nasnet_keras.checks import check_number

    check_int("--max-retries", args.max_retries, minimum=0, allow_none=True)
    check_number("--lease-timeout", args.lease_timeout, minimum=0, exclusive_minimum=True)
    check_number("--chief-timeout", args.chief_timeout, minimum=0, exclusive_minimum=True)
    return DistributedConfig(lease_timeout=args.lease_timeout, chief_timeout=args.chief_timeout,
                             auth=auth.from_args(args))
