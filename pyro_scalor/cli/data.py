"""``pyro-scalor data``: list presets, make (cache) splits, preview a sequence, measure a preset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pyro_scalor.cli.common import (
    add_cache_dir_argument,
    add_command,
    non_negative_int,
    positive_float,
    positive_int,
)
from pyro_scalor.data.cache import MARKER, META, cache_path, load_or_generate
from pyro_scalor.data.config import SPLITS, DataConfig
from pyro_scalor.data.presets import PRESETS, get_preset
from pyro_scalor.data.preview import write_preview
from pyro_scalor.data.stats import measure
from pyro_scalor.io import save_json

DEFAULT_PREVIEW_DIR = Path("outputs") / "data-preview"


def register(sub) -> None:
    """Add the ``data`` command and its sub-commands to ``sub``."""
    names = ", ".join(PRESETS)
    data = add_command(
        sub,
        "data",
        help="procedural moving-object datasets",
        description="Generate, cache, preview and measure moving-object video datasets.",
    )
    commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    commands.required = True

    listing = add_command(commands, "list", help="list the presets and their settings")
    listing.set_defaults(func=run_list)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--preset", required=True, help=f"dataset preset, one of: {names}")
        p.add_argument(
            "--seed", type=non_negative_int, default=None, help="override the preset's seed"
        )

    make = add_command(commands, "make", help="generate a preset's splits into the disk cache")
    common(make)
    make.add_argument(
        "--split", choices=[*SPLITS, "all"], default="all", help="which split to generate"
    )
    make.add_argument(
        "--num-sequences",
        type=positive_int,
        default=None,
        help="sequences per split (default: the preset's split sizes)",
    )
    add_cache_dir_argument(make)
    make.set_defaults(func=run_make)

    preview = add_command(commands, "preview", help="write a GIF and a PNG grid of one sequence")
    common(preview)
    preview.add_argument("--split", choices=list(SPLITS), default="test", help="which split")
    preview.add_argument(
        "--index", type=non_negative_int, default=0, help="sequence index in the split"
    )
    preview.add_argument("--out", type=Path, default=DEFAULT_PREVIEW_DIR, help="output directory")
    preview.add_argument("--scale", type=positive_int, default=4, help="GIF upscaling factor")
    preview.add_argument("--fps", type=positive_float, default=4.0, help="GIF frames per second")
    preview.set_defaults(func=run_preview)

    stats = add_command(
        commands, "stats", help="measure visible objects per frame, box sizes, speed"
    )
    common(stats)
    stats.add_argument("--json", type=Path, required=True, help="where to write the results")
    stats.add_argument("--split", choices=list(SPLITS), default="test", help="which split")
    stats.add_argument(
        "--num-sequences", type=positive_int, default=200, help="sequences to measure"
    )
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
    save_json(result, args.json, sort_keys=False)
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
