"""A search whose trials only sleep: the real chief, gRPC and oracle, without training.

For the benchmarks (`benchmarks/distributed.py`) and the fault tests: what is measured
or broken is the distributed machinery, not the children. Run one chief and any number of
workers under keras-tuner's environment variables, exactly like `nasnet search`:

    KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000 \\
        python -m tuner.distributed.fixed_cost --directory runs/load --max-trials 100 --seconds 1
    KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000 \\
        python -m tuner.distributed.fixed_cost --directory runs/load --max-trials 100 --seconds 1

The score of a trial is a fixed function of its values (so PPO has something to learn and
a re-run trial scores the same). `--fail-every K` makes every K-th trial raise, to check
that failure messages reach the chief's records.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time

import keras_tuner

from nasnet_keras.fileio import write_json
from tuner.distributed import DistributedConfig, auth, protocol, role, use_chief_threads
from tuner.distributed.options import ensure_tuner_id

OBJECTIVE = "val_accuracy"


def score_of(values: dict) -> float:
    digest = hashlib.sha256(repr(sorted(values.items())).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


class FixedCostTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """A tuner whose `run_trial` sleeps `seconds` and returns `score_of(values)`."""

    def __init__(self, oracle, *, seconds: float, fail_every: int = 0, **kwargs):
        self.seconds = seconds
        self.fail_every = fail_every
        super().__init__(oracle=oracle, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        time.sleep(self.seconds)
        if self.fail_every and int(trial.trial_id) % self.fail_every == 0:
            raise RuntimeError(f"injected failure of trial {trial.trial_id} on {self.tuner_id}")
        return {OBJECTIVE: score_of(trial.hyperparameters.values)}

    def save_model(self, trial_id, model, step=0):
        pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tuner.distributed.fixed_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--directory", required=True)
    parser.add_argument("--strategy", default="ppo")
    parser.add_argument("--max-trials", type=int, default=40)
    parser.add_argument("--num-blocks", type=int, default=1)
    parser.add_argument("--controller-batch", type=int, default=None, help="PPO: rewards per update (paper: 20)")
    parser.add_argument("--seconds", type=float, default=1.0, help="cost of one trial")
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--max-retries", type=int, default=1)
    parser.add_argument("--lease-timeout", type=float, default=protocol.DEFAULT_LEASE_TIMEOUT)
    parser.add_argument("--chief-timeout", type=float, default=protocol.DEFAULT_CHIEF_TIMEOUT)
    parser.add_argument("--stats-file", default=None, help="chief: write its counters and per-call times here")
    parser.add_argument("--ready-file", default=None, help="worker: create this file when connected, then wait "
                                                          "for --go-file (benchmarks start all workers at once)")
    parser.add_argument("--go-file", default=None)
    auth.add_arguments(parser)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    ensure_tuner_id()
    use_chief_threads()
    from tuner.oracles import make_oracle
    from tuner.space import SearchSpace

    space = SearchSpace(num_blocks=args.num_blocks)
    settings = {"strategy": args.strategy, "search_space": space.to_dict(), "seconds": args.seconds,
                "fail_every": args.fail_every}
    config = DistributedConfig(lease_timeout=args.lease_timeout, chief_timeout=args.chief_timeout,
                               auth=auth.from_args(args))
    options = {"batch_size": args.controller_batch} if args.strategy == "ppo" else {}
    oracle = make_oracle(args.strategy, space, max_trials=args.max_trials, seed=1,
                         max_retries_per_trial=args.max_retries, max_consecutive_failed_trials=10**6, **options)
    here = role()
    try:
        lock = config.claim(args.directory, args.strategy) if here == "chief" else None
        tuner = FixedCostTuner(oracle, seconds=args.seconds, fail_every=args.fail_every, directory=args.directory,
                               project_name=args.strategy)
        if here == "worker":
            config.attach(tuner, settings)
    except protocol.ChiefUnavailableError as error:
        print(f"fixed_cost: error: {error}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"fixed_cost: error: {error}", file=sys.stderr)
        return 2
    if here == "chief":
        tuner.oracle.verbose = 0
        servicer = config.serve(tuner, settings)
        if args.stats_file:
            write_json(args.stats_file, servicer.stats(include_times=True))
        lock.release()
        return 0
    if args.ready_file:
        write_json(args.ready_file, {"pid": os.getpid()})
        while args.go_file and not os.path.exists(args.go_file):
            time.sleep(0.05)
    try:
        tuner.search(verbose=0)
    except protocol.ChiefUnavailableError as error:
        print(f"fixed_cost: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
