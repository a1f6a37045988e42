"""The ``pyro-scalor`` command line: one sub-command per user job.

Each sub-command lives in its own module of this package, which exposes ``register(sub)``; that
function adds an ``argparse`` parser (see :func:`pyro_scalor.cli.common.add_command`) and sets
``func`` (called with the parsed namespace, returning an exit code). This module only wires them
together, configures logging and turns user errors into one line on stderr with exit code 2.
(The ``main`` sub-command lives in ``main_job``: a sub-module named ``main`` would replace the
:func:`main` function as an attribute of this package once imported.)
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pyro_scalor.cli.common import CliError

__all__ = ["COMMAND_MODULES", "CliError", "build_parser", "main"]

#: Modules that provide sub-commands, in the order they appear in ``--help``.
COMMAND_MODULES: tuple[str, ...] = (
    "pyro_scalor.cli.data",
    "pyro_scalor.cli.train",
    "pyro_scalor.cli.evaluate",
    "pyro_scalor.cli.main_job",
    "pyro_scalor.cli.bench",
    "pyro_scalor.cli.generate",
    "pyro_scalor.cli.track",
    "pyro_scalor.cli.convert",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="pyro-scalor",
        description="SCALOR in Pyro: data, training, evaluation, generation, tracking of your "
        "own videos, and benchmarks.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the chosen sub-command, return its code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    try:
        code = args.func(args)
    except (CliError, ValueError, FileNotFoundError) as err:
        print(f"pyro-scalor {args.command}: error: {err}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
