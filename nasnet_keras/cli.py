"""The `nasnet` command line: one entry point, one sub-command module per job.

Sub-commands register themselves through a `register(subparsers)` function in their own
module (models/profile here; search in `tuner.cli`; train in `nasnet_keras.training.cli`;
export in `savedmodels.cli`), so each stays next to the code it drives.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMAND_MODULES = (
    "nasnet_keras.profiling",
    "nasnet_keras.demo",
    "tuner.cli",
    "nasnet_keras.training.cli",
    "savedmodels.cli",
    "savedmodels.detection.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nasnet", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name and name.startswith(error.name):
                continue  # that part of the package is not installed
            raise
        module.register(subparsers)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as error:
        print(f"nasnet {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
