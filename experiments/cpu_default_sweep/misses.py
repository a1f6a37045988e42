"""Which true objects does a checkpoint miss, and what does the model do with their pixels?

For the first N sequences of a split, every visible true box is matched (box IoU >= 0.5) against
the tracked boxes of its frame. True boxes fall into groups:

- edge slivers (touching the frame's edge, under 40 px^2), split by whether the object is
  entering the view (it was not visible one frame earlier, or its box grew) or leaving it;
- all other boxes ("inner").

For the missed ones, the script measures three things over the sprite pixels inside the true
box (any channel above 0.2; dsprites backgrounds are black):

- how many sprite pixels that is;
- which fraction the background paints (above 0.2);
- which fraction the reconstruction gets within 0.2;
- the best IoU of any tracked box with the true box.

    python experiments/cpu_default_sweep/misses.py CKPT --sequences 200 --json FILE
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.evaluation import edge_slivers
from pyro_scalor.metrics.boxes import iou_matrix


def _area(box: np.ndarray) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


def group_of(item: dict, slivers: np.ndarray, t: int, k: int) -> str:
    """'inner', 'edge entering' or 'edge leaving' for true object k at frame t."""
    if not slivers[t, k]:
        return "inner"
    boxes, vis = item["boxes"].numpy(), item["visible"].numpy()
    if t == 0 or not vis[t - 1, k] or _area(boxes[t - 1, k]) < _area(boxes[t, k]):
        return "edge entering"
    return "edge leaving"


def scored_objects(items: list[dict], res, size: int):
    """Yield ``(b, t, k, best_iou, group)`` for every visible true object k of frame t of each
    sequence ``items[b]``: its best box IoU with the tracked boxes of ``res`` (a TrackingResult
    of those sequences) and its group (:func:`group_of`)."""
    for b, item in enumerate(items):
        boxes, vis = item["boxes"].numpy(), item["visible"].numpy()
        slivers = edge_slivers(boxes, vis, size, size, 40)
        for t in range(vis.shape[0]):
            pred = res.boxes[b, t].numpy()[res.valid[b, t].numpy()]
            true = np.nonzero(vis[t])[0]
            ious = iou_matrix(boxes[t, true], pred)  # (visible true boxes, tracked boxes)
            bests = ious.max(1) if ious.shape[1] else np.zeros(len(true))
            for k, best in zip(true, bests.tolist()):
                yield b, t, int(k), best, group_of(item, slivers, t, k)


def main(argv=None) -> int:
    """Print (and optionally write) the per-group miss statistics; returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--split", default="test")
    p.add_argument("--sequences", type=int, default=200)
    p.add_argument("--threshold", type=float, default=0.5, help="suppression threshold")
    p.add_argument("--track-threshold", type=float, default=0.5, help="track suppression IoU")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the statistics here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    scalor = Scalor.from_checkpoint(args.checkpoint)
    scalor.config = scalor.config.replace(
        suppression_threshold=args.threshold, track_suppression_threshold=args.track_threshold
    )
    ds = load_dataset("dsprites-ld", args.split, num_sequences=args.sequences)
    size = scalor.config.image_size
    rows: dict[str, list] = {"inner": [], "edge entering": [], "edge leaving": []}
    for lo in range(0, len(ds), 8):
        items = [ds[i] for i in range(lo, min(len(ds), lo + 8))]
        video = torch.stack([it["video"] for it in items])
        res = scalor.track(video)
        for b, t, k, best, group in scored_objects(items, res, size):
            box = items[b]["boxes"][t, k]
            x0, y0, x1, y1 = (int(round(float(v))) for v in box)
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size), min(y1, size)
            img = video[b, t, :, y0:y1, x0:x1]
            sprite = img.max(0).values > 0.2
            if not sprite.any():
                continue
            bg = res.background[b, t, :, y0:y1, x0:x1].max(0).values[sprite]
            err = (res.reconstruction[b, t, :, y0:y1, x0:x1] - img).abs().max(0).values
            rows[group].append(
                (
                    best >= 0.5,
                    float(sprite.sum()),
                    float((bg > 0.2).float().mean()),
                    float((err[sprite] < 0.2).float().mean()),
                    best,
                )
            )
    total = sum(len(r) for r in rows.values())
    out = {"checkpoint": args.checkpoint, "split": args.split, "sequences": len(ds)}
    for name, r in rows.items():
        a = np.array(r, dtype=float).reshape(-1, 5)
        miss = a[a[:, 0] == 0]
        out[name] = {
            "true_boxes": len(a),
            "share_of_true_boxes": round(len(a) / max(total, 1), 4),
            "missed": len(miss),
            "miss_rate": round(len(miss) / max(len(a), 1), 4),
            "missed_sprite_px": round(float(miss[:, 1].mean()), 2) if len(miss) else None,
            "missed_painted_by_background": round(float(miss[:, 2].mean()), 3)
            if len(miss)
            else None,
            "missed_reconstructed": round(float(miss[:, 3].mean()), 3) if len(miss) else None,
            "missed_best_iou": round(float(miss[:, 4].mean()), 3) if len(miss) else None,
            "missed_with_a_box_iou_over_0.1": round(float((miss[:, 4] > 0.1).mean()), 3)
            if len(miss)
            else None,
        }
        print(name, json.dumps(out[name]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
