"""``pyro-scalor data``: list presets, make (cache) splits, preview a sequence, measure a preset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pyro_scalor.data.cache import MARKER, META, cache_path, load_or_generate
from pyro_scalor.data.config import SPLITS, DataConfig
from pyro_scalor.data.presets import PRESETS, get_preset
from pyro_scalor.data.preview import write_preview
from pyro_scalor.data.stats import measure

DEFAULT_PREVIEW_DIR = Path("outputs") / "data-preview"


def _number(cast: type, low: float, inclusive: bool, what: str):
    """An argparse ``type`` that parses with ``cast`` and requires ``>= low`` (or ``> low``)."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (value > low or (inclusive and value == low)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


_positive_int = _number(int, 1, True, "a positive integer")
_non_negative_int = _number(int, 0, True, "an integer >= 0")
_positive_float = _number(float, 0.0, False, "a positive number")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its sub-commands to ``subparsers``."""
    names = ", ".join(PRESETS)
    data = subparsers.add_parser(
        "data",
        help="procedural moving-object datasets",
        description="Generate, cache, preview and measure moving-object video datasets.",
    )
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    sub.required = True

    listing = sub.add_parser("list", help="list the presets and their settings")
    listing.set_defaults(func=run_list)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--preset", required=True, help=f"dataset preset, one of: {names}")
        p.add_argument(
            "--seed", type=_non_negative_int, default=None, help="override the preset's seed"
        )

    make = sub.add_parser("make", help="generate a preset's splits into the disk cache")
    common(make)
    make.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    make.add_argument(
        "--num-sequences",
        type=_positive_int,
        default=None,
        help="sequences per split (default: the preset's split sizes)",
    )
    make.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache directory (default: $PYRO_SCALOR_CACHE or ~/.cache/pyro-scalor)",
    )
    make.set_defaults(func=run_make)

    preview = sub.add_parser("preview", help="write a GIF and a PNG grid of one sequence")
    common(preview)
    preview.add_argument("--split", choices=list(SPLITS), default="test")
    preview.add_argument("--index", type=_non_negative_int, default=0)
    preview.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_PREVIEW_DIR,
        help=f"output directory (default: {DEFAULT_PREVIEW_DIR})",
    )
    preview.add_argument("--scale", type=_positive_int, default=4, help="GIF upscaling factor")
    preview.add_argument("--fps", type=_positive_float, default=4.0, help="GIF frames per second")
    preview.set_defaults(func=run_preview)

    stats = sub.add_parser("stats", help="measure visible objects per frame, box sizes, speed")
    common(stats)
    stats.add_argument("--json", type=Path, required=True, help="where to write the results")
    stats.add_argument("--split", choices=list(SPLITS), default="test")
    stats.add_argument("--num-sequences", type=_positive_int, default=200)
    stats.set_defaults(func=run_stats)


def _config(args: argparse.Namespace) -> DataConfig:
    overrides = {} if args.seed is None else {"seed": args.seed}
    return get_preset(args.preset, **overrides)


def run_list(args: argparse.Namespace) -> int:
    """Print one line per preset."""
    for name, c in PRESETS.items():
        kind = c.objects
        if c.objects == "mnist":
            kind += " " + "".join(map(str, c.digits))
        steps = list(c.discovery_steps)
        extra = f" new at each of steps {steps}" if steps else ""
        print(
            f"{name:18s} {kind:16s} objects {c.min_objects}-{c.max_objects}{extra}, "
            f"size {c.min_size}-{c.max_size} px, env {c.env_size} px, T={c.seq_len}, "
            f"background {c.background}"
        )
    return 0


def run_make(args: argparse.Namespace) -> int:
    """Generate (or find cached) the requested splits; print where they are."""
    config = _config(args)
    splits = list(SPLITS) if args.split == "all" else [args.split]
    for split in splits:
        n = args.num_sequences or config.num_sequences(split)
        path = cache_path(config, split, n, args.cache_dir)
        cached = (path / MARKER).is_file()
        arrays, path = load_or_generate(
            config, split, n, cache_dir=args.cache_dir, progress=not getattr(args, "quiet", False)
        )
        seconds = json.loads((path / META).read_text())["seconds"]
        state = "cached" if cached else f"generated in {seconds:.1f} s"
        print(
            f"{config.name} {split}: {n} sequences, video {tuple(arrays['video'].shape)} "
            f"uint8, {state}: {path}"
        )
    return 0


def run_preview(args: argparse.Namespace) -> int:
    """Write a GIF (boxes coloured by id) and PNG grids of one sequence; print their paths."""
    paths = write_preview(
        _config(args), args.split, args.index, args.out, scale=args.scale, fps=args.fps
    )
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Measure the preset and write the results as JSON; print a one-line summary."""
    config = _config(args)
    result = measure(
        config, args.split, args.num_sequences, progress=not getattr(args, "quiet", False)
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    vis = result["visible_per_frame"]
    paper = result.get("paper_visible_average")
    target = f" (paper: {paper})" if paper is not None else ""
    print(
        f"{config.name}: visible objects per frame mean {vis['mean']:.2f}{target}, "
        f"min {vis['min']}, max {vis['max']}; object box sides "
        f"{result['object_box_side_px']['min']}-{result['object_box_side_px']['max']} px; "
        f"{result['num_sequences']} sequences in {result['seconds']:.1f} s -> {args.json}"
    )
    return 0
