"""Score one checkpoint under several tracking-time suppression settings (no training).

Each setting is ``S:K``: proposal suppression threshold S (overlap over the smaller box) and
track suppression threshold K (box IoU; 0 = off), or ``S:K:R`` with a rejection threshold R
when tracking (the share of a proposal's mask explained by the propagated objects above which it
is rejected; default: the checkpoint's, 0.3). Scores are tracking metrics on the first N
sequences of a split, one JSON line per setting.

    python experiments/cpu_default_sweep/knobs.py runs/cpu-default/checkpoint.pt \\
        0.3:0 0.4:0.7 0.5:0.5 --split val --sequences 100
"""

from __future__ import annotations

import argparse
import json

import torch

from pyro_scalor.api import Scalor
from pyro_scalor.evaluation import evaluate

KEYS = ("mota", "count_mae", "precision", "recall", "idf1", "id_switches", "propagated_fraction")


def setting(text: str) -> tuple[float, float, float | None]:
    """Parse ``S:K`` or ``S:K:R`` into (suppression, track suppression, rejection or None)."""
    try:
        values = [float(x) for x in text.split(":")]
        if len(values) not in (2, 3):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected S:K or S:K:R such as 0.5:0.5 or 0.5:0.5:0.3, got {text!r}"
        ) from None
    return values[0], values[1], values[2] if len(values) == 3 else None


def main(argv=None) -> int:
    """Print one JSON line of metrics per setting; returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("settings", nargs="+", type=setting, metavar="S:K[:R]")
    p.add_argument("--split", default="val")
    p.add_argument("--sequences", type=int, default=100)
    p.add_argument("--preset", default="dsprites-ld")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache-dir")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for sup, trk, rej in args.settings:
        scalor = Scalor.from_checkpoint(args.checkpoint, device=args.device)
        changes = dict(suppression_threshold=sup, track_suppression_threshold=trk)
        if rej is not None:
            changes["rejection_threshold"] = rej
        scalor.config = scalor.config.replace(**changes)
        metrics, _ = evaluate(
            scalor,
            args.preset,
            args.split,
            num_sequences=args.sequences,
            cache_dir=args.cache_dir,
            progress=False,
        )
        out = {k: round(float(metrics[k]), 4) for k in KEYS}
        name = f"{sup}:{trk}" if rej is None else f"{sup}:{trk}:{rej}"
        print(json.dumps({"setting": name, "step": scalor.step, **out}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
