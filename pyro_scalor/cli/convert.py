"""``pyro-scalor convert-checkpoint``: rewrite a checkpoint of the older, pickled format as a
current one that loads without running code.

Converting unpickles the old file with torch's full unpickler, which can run code stored in it:
the command is explicit so that a user runs it only on a file they trust.
"""

from __future__ import annotations

from pathlib import Path

from pyro_scalor.cli.common import CliError, add_command


def register(sub) -> None:
    """Add the ``convert-checkpoint`` sub-command."""
    p = add_command(
        sub,
        "convert-checkpoint",
        help="convert an older pickled checkpoint you trust to the current safe format",
    )
    p.add_argument("src", type=Path, help="checkpoint file or run folder to convert (trusted)")
    p.add_argument("dst", type=Path, help="where to write the converted checkpoint file")
    p.set_defaults(func=run_convert)


def run_convert(args) -> int:
    """Convert ``args.src`` to ``args.dst``; refuses to overwrite ``src`` itself."""
    from pyro_scalor.train.checkpoint import checkpoint_file, convert_checkpoint

    if args.dst.exists() and args.dst.resolve() == checkpoint_file(args.src).resolve():
        raise CliError("dst must differ from src (the original is kept)")
    out = convert_checkpoint(args.src, args.dst)
    print(f"wrote {out}")
    return 0
