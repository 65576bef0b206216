"""The `nasnet` command line: one entry point, one sub-command module per job.

Sub-commands are plugins, found the way pytest and flake8 find theirs: every module listed
in the `nasnet_keras.commands` entry-point group (declared in setup.py) has a
`register(subparsers)` function that adds its sub-commands. So each command stays next to
the code it drives (profile/variants in `nasnet_keras.variants_cli`, train in
`nasnet_keras.training.cli`, search in `tuner.cli`, export in `savedmodels.cli`, the demo in
`nasnet_demo`), and this module imports none of the layers above it.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

ENTRY_POINT_GROUP = "nasnet_keras.commands"


def command_entry_points() -> list[metadata.EntryPoint]:
    """The installed sub-command plugins, in a stable (name) order."""
    found = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    if not found:
        raise RuntimeError(
            f"No `nasnet` sub-commands are installed (entry-point group {ENTRY_POINT_GROUP!r} is empty): "
            "install the package, e.g. `pip install -e .` in the checkout"
        )
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nasnet", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (also: environment variable NASNET_DEBUG=1)")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for entry_point in command_entry_points():
        entry_point.load()(subparsers)
    return parser


def main(argv=None) -> int:
    """Run one sub-command; a user fault prints one line and returns 2 (see `nasnet_keras.errors`)."""
    from nasnet_keras import errors

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"nasnet {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if not errors.is_user_fault(error) or errors.debug_requested(args.debug):
            raise
        print(f"nasnet {args.command}: error: {errors.one_line(error)}", file=sys.stderr)
        return errors.exit_code(error)


if __name__ == "__main__":
    sys.exit(main())
