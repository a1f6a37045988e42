"""Tracking scores of checkpoints at several discovery thresholds (the presence a discovery needs
to count as an object when tracking with posterior modes), the duplicate rules held at 0.5 / 0.5.

    python experiments/capacity/discovery_threshold.py runs/k32-main-s0 runs/k32-main-s1 \
        --thresholds 0.5 0.7 0.8 0.9 --split val --sequences 300 \
        --json experiments/capacity/discovery_threshold_val.json

Thresholds are chosen on validation sequences; the test split scores the choice.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from pyro_scalor.api import Scalor, TrackingConfig
from pyro_scalor.eval.tracking import evaluate
from pyro_scalor.io import save_json

KEYS = ("mota", "count_mae", "precision", "recall", "id_switches", "propagated_fraction")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--thresholds", nargs="+", type=float, default=[0.5, 0.7])
    p.add_argument("--split", default="val")
    p.add_argument("--sequences", type=int, default=300)
    p.add_argument("--data", default="dsprites-ld")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, required=True)
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(a.threads)
    rows = []
    for run in a.runs:
        for thr in a.thresholds:
            scalor = Scalor.from_checkpoint(run)
            scalor.tracking = TrackingConfig(
                suppression_threshold=0.5, track_suppression_threshold=0.5, discovery_threshold=thr
            )
            m, _ = evaluate(scalor, a.data, a.split, num_sequences=a.sequences, progress=False)
            rows.append(dict(run=str(run), threshold=thr, **{k: m[k] for k in KEYS}))
            logging.info("%s", rows[-1])
    save_json(dict(split=a.split, sequences=a.sequences, data=a.data, rows=rows), a.json)


if __name__ == "__main__":
    main()
