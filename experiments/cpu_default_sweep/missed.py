"""Why a checkpoint misses true objects: sort each unmatched true box of N test sequences.

Per frame, predictions (presence > 0.5, as evaluated) and true boxes are matched greedily by IoU
(at least 0.5, one to one); each unmatched true box gets the first category that applies:
``small_border`` (touches the frame edge, under 40 px^2), ``occluded`` (its box overlaps another
true box by IoU > 0.3), ``dup_claimed`` (a prediction overlaps it by IoU >= 0.5 but was matched
to another object), ``in_merge`` (a prediction overlapping it by IoU > 0.1 also overlaps another
true box: one box over two objects), ``partial`` (some prediction overlaps it by IoU > 0.1),
else ``nothing``.

    python experiments/cpu_default_sweep/missed.py runs/cpu-default/checkpoint.pt --sequences 32
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.metrics.boxes import iou_matrix

CATEGORIES = (
    "matched",
    "small_border",
    "occluded",
    "dup_claimed",
    "in_merge",
    "partial",
    "nothing",
)


def categorise(pred: np.ndarray, gt: np.ndarray, size: int) -> dict[str, int]:
    """Counts per category for one frame's predicted (P, 4) and true (G, 4) pixel boxes."""
    counts = dict.fromkeys(CATEGORIES, 0)
    if not len(gt):
        return counts
    iou = iou_matrix(pred, gt) if len(pred) else np.zeros((0, len(gt)))
    gg = iou_matrix(gt, gt)
    np.fill_diagonal(gg, 0)
    matched, used = np.zeros(len(gt), bool), np.zeros(len(pred), bool)
    pairs = sorted(((iou[i, j], i, j) for i, j in zip(*np.nonzero(iou >= 0.5))), reverse=True)
    for _, i, j in pairs:
        if not used[i] and not matched[j]:
            used[i] = matched[j] = True
    for j in range(len(gt)):
        x0, y0, x1, y1 = gt[j]
        area = (x1 - x0) * (y1 - y0)
        border = x0 <= 0 or y0 <= 0 or x1 >= size or y1 >= size
        col = iou[:, j]
        if matched[j]:
            key = "matched"
        elif border and area < 40:
            key = "small_border"
        elif gg[j].max() > 0.3:
            key = "occluded"
        elif len(pred) and col.max() >= 0.5:
            key = "dup_claimed"
        elif len(pred) and ((col > 0.1) & ((iou > 0.1).sum(1) >= 2)).any():
            key = "in_merge"
        elif len(pred) and col.max() > 0.1:
            key = "partial"
        else:
            key = "nothing"
        counts[key] += 1
    return counts


def main(argv=None) -> int:
    """Track N test sequences with a checkpoint and print the category counts as JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--sequences", type=int, default=32)
    p.add_argument("--preset", default="dsprites-ld")
    p.add_argument("--cache-dir")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    scalor = Scalor.from_checkpoint(args.checkpoint)
    ds = load_dataset(args.preset, "test", num_sequences=args.sequences, cache_dir=args.cache_dir)
    items = [ds[i] for i in range(len(ds))]
    res = scalor.track(torch.stack([it["video"] for it in items]), chunk=16)
    totals = dict.fromkeys(CATEGORIES, 0)
    size = scalor.config.image_size
    for b, it in enumerate(items):
        boxes, visible = np.asarray(it["boxes"]), np.asarray(it["visible"])
        for t in range(boxes.shape[0]):
            pred = res.boxes[b, t].numpy()[res.valid[b, t].numpy()]
            for k, v in categorise(pred, boxes[t][visible[t]], size).items():
                totals[k] += v
    totals["true_boxes"] = sum(totals[k] for k in CATEGORIES)
    print(json.dumps(totals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
