"""The ``pyro-scalor`` command line: one sub-command per user job.

Each sub-command lives in its own module, which exposes ``register(subparsers)``; that function
adds an ``argparse`` parser and sets ``func`` (called with the parsed namespace, returning an
exit code). This module only wires them together and configures logging.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Modules that provide sub-commands, in the order they appear in ``--help``.
COMMAND_MODULES: tuple[str, ...] = (
    "pyro_scalor.data.cli",
    "pyro_scalor.train.cli",
    "pyro_scalor.main_job",
    "pyro_scalor.bench",
    "pyro_scalor.generation",
)


class CliError(Exception):
    """A user error on the command line: printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="pyro-scalor",
        description="SCALOR in Pyro: data, training, evaluation, generation and benchmarks.",
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
