"""Measure the data generator: default training-set generation time and, for every preset, the
visible objects per frame against the SCALOR paper's averages.

Usage (from the repository root, about 2 minutes on a 2-core CPU):

    python experiments/data/measure.py [--num-sequences 500] [--out experiments/data/results.json]

Writes the JSON next to this script by default and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pyro_scalor.data import PRESETS, get_preset, load_or_generate
from pyro_scalor.data.stats import measure


def time_default_train_set() -> dict:
    """Generate dsprites-ld train (10,000 x 8 frames) into a fresh cache; return timings."""
    config = get_preset("dsprites-ld")
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        arrays, path = load_or_generate(config, "train", cache_dir=cache)
        total = time.perf_counter() - start
        generate = json.loads((path / "meta.json").read_text())["seconds"]
        shape = list(arrays["video"].shape)
        mean_visible = float(np.asarray(arrays["visible"]).sum(axis=2).mean())
        del arrays
    return {
        "preset": "dsprites-ld",
        "split": "train",
        "video_shape": shape,
        "seconds_generate": generate,
        "seconds_total_with_cache_write": total,
        "mean_visible_per_frame": mean_visible,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-sequences", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()

    results = {
        "machine": {
            "description": "2-core CPU, no GPU",
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
        },
        "default_train_set": time_default_train_set(),
        "presets": {},
    }
    for name in PRESETS:
        results["presets"][name] = measure(get_preset(name), "test", args.num_sequences)
    args.out.write_text(json.dumps(results, indent=2) + "\n")

    train = results["default_train_set"]
    print(
        f"default train set {train['video_shape']}: generated in "
        f"{train['seconds_generate']:.1f} s ({train['seconds_total_with_cache_write']:.1f} s "
        "with the cache write)\n"
    )
    print(
        "| preset | objects in env | visible/frame mean | min | max | paper avg | diff "
        "| object box sides (px) | s / 100 seq |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results["presets"].items():
        vis = r["visible_per_frame"]
        paper = r.get("paper_visible_average")
        diff = f"{100 * r['relative_difference']:+.1f}%" if paper is not None else "-"
        objs = r["objects_per_sequence"]
        sides = r["object_box_side_px"]
        print(
            f"| {name} | {objs['min']}-{objs['max']} | {vis['mean']:.2f} | {vis['min']} | "
            f"{vis['max']} | {paper if paper is not None else '-'} | {diff} | "
            f"{sides['min']}-{sides['max']} | {100 * r['seconds'] / r['num_sequences']:.2f} |"
        )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
