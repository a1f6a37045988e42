"""What the tracking errors are: miss rate by object size and by crowding, false positives.

    python experiments/tracking_density/errors.py runs/cpu-md --data dsprites-md \
        --num-sequences 200 --json experiments/tracking_density/errors_md_on_dsprites-md.json

Per frame, predictions (presence > 0.5) and visible true objects are matched one to one
(Hungarian on 1 - IoU, IoU >= 0.5, as the tracking metrics match). Each true object is binned by
its size (the side of a square of its visible box's area, px), by whether its box touches the
frame's edge (an object entering or leaving the view) and by crowding (the largest share of its
box covered by the box of another visible object); the miss rate of each bin is reported, with
the number of false positives per frame. ``--max-objects`` tracks with another capacity.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.metrics.discovery_delay import matched_objects

SIZE_BINS = (0, 6, 8, 10, 12, 100)
CROWD_BINS = (-0.01, 0.0, 0.3, 0.5, 1.0)


def covered_share(boxes: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(O,) the largest share of each box covered by another valid box (0 when alone)."""
    x0, y0, x1, y1 = (boxes[:, i] for i in range(4))
    iw = np.clip(np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None]), 0, None)
    ih = np.clip(np.minimum(y1[:, None], y1[None]) - np.maximum(y0[:, None], y0[None]), 0, None)
    area = np.clip((x1 - x0) * (y1 - y0), 1e-9, None)
    share = iw * ih / area[:, None]
    np.fill_diagonal(share, 0.0)
    share[:, ~valid] = 0.0
    return share.max(1) if len(boxes) else np.zeros(0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True)
    p.add_argument("--num-sequences", type=int, default=200)
    p.add_argument("--max-objects", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    scalor = Scalor.from_checkpoint(a.checkpoint)
    ds = load_dataset(a.data, "test", num_sequences=a.num_sequences)
    sizes, crowd, hit, edge = [], [], [], []
    size = scalor.config.image_size
    false_pos, frames = 0, 0
    for lo in range(0, len(ds), a.batch_size):
        items = [ds[i] for i in range(lo, min(lo + a.batch_size, len(ds)))]
        video = torch.stack([it["video"] for it in items])
        res = scalor.track(video, chunk=a.batch_size, max_objects=a.max_objects).to("cpu")
        pb, pv = res.boxes.numpy().astype(np.float64), res.valid.numpy()
        for i, it in enumerate(items):
            gb, gv = np.asarray(it["boxes"], dtype=np.float64), np.asarray(it["visible"], bool)
            for t in range(gb.shape[0]):
                m = matched_objects(pb[i, t], pv[i, t], gb[t], gv[t], 0.5)
                vis = np.flatnonzero(gv[t])
                side = np.sqrt(np.prod(gb[t, vis, 2:] - gb[t, vis, :2], axis=-1).clip(0))
                sizes.append(side)
                crowd.append(covered_share(gb[t], gv[t])[vis])
                hit.append(m[vis])
                b = gb[t, vis]
                edge.append((b[:, :2] <= 0).any(-1) | (b[:, 2:] >= size).any(-1))
                false_pos += int(pv[i, t].sum() - m.sum())
                frames += 1
    sizes, crowd, hit, edge = (np.concatenate(x) for x in (sizes, crowd, hit, edge))
    report = {
        "checkpoint": str(a.checkpoint),
        "data": a.data,
        "num_sequences": len(ds),
        "max_objects": a.max_objects or scalor.config.max_objects,
        "objects": int(hit.size),
        "miss_rate": float(1 - hit.mean()),
        "false_positives_per_frame": false_pos / frames,
        "at_frame_edge": {
            "share_of_objects": float(edge.mean()),
            "miss_rate": float(1 - hit[edge].mean()) if edge.any() else None,
            "miss_rate_inside": float(1 - hit[~edge].mean()) if (~edge).any() else None,
        },
        "by_size_px": [],
        "by_crowding": [],
    }
    for key, values, bins in (("by_size_px", sizes, SIZE_BINS), ("by_crowding", crowd, CROWD_BINS)):
        for lo, hi in zip(bins[:-1], bins[1:], strict=True):
            sel = (values > lo) & (values <= hi)
            if sel.any():
                report[key].append(
                    {
                        "bin": [max(lo, 0.0), hi],
                        "share_of_objects": float(sel.mean()),
                        "miss_rate": float(1 - hit[sel].mean()),
                    }
                )
    text = json.dumps(report, indent=1)
    print(text)
    if a.json:
        a.json.write_text(text)


if __name__ == "__main__":
    main()
