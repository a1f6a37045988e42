"""What the false positives of a checkpoint are on dsprites-ld test sequences: extra parts of one
object (predictions inside the same true box that do not overlap each other much), duplicates
(predictions inside the same true box with IoU > 0.5) or boxes on no object.

    python experiments/capacity/false_positives.py runs/cpu-capacity [--sequences 100]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset


def intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection areas of boxes a (N, 4) and b (M, 4) as (x0, y0, x1, y1)."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def area(x: np.ndarray) -> np.ndarray:
    return (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])


def classify(pred: np.ndarray, true: np.ndarray) -> dict:
    """Counts for one frame's valid predicted boxes and visible true boxes."""
    out = {"pred": len(pred), "true": len(true), "part": 0, "duplicate": 0, "off_object": 0}
    if len(pred) == 0:
        return out
    if len(true) == 0:
        out["off_object"] = len(pred)
        return out
    share = intersection(pred, true) / np.maximum(area(pred)[:, None], 1)
    owner, inside = share.argmax(1), share.max(1) > 0.7
    inter = intersection(pred, pred)
    iou = inter / (area(pred)[:, None] + area(pred)[None, :] - inter + 1e-9)
    np.fill_diagonal(iou, 0)
    for i in range(len(pred)):
        if not inside[i]:
            out["off_object"] += 1
        elif (owner[inside] == owner[i]).sum() > 1:
            out["duplicate" if iou[i].max() > 0.5 else "part"] += 1
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--sequences", type=int, default=100)
    p.add_argument("--max-objects", type=int, default=None)
    a = p.parse_args()
    torch.set_num_threads(1)
    scalor = Scalor.from_checkpoint(a.checkpoint)
    data = load_dataset("dsprites-ld", "test")
    result = scalor.track(data.videos(range(a.sequences)), max_objects=a.max_objects)
    true = np.asarray(data.arrays["boxes"][: a.sequences])
    visible = np.asarray(data.arrays["visible"][: a.sequences]).astype(bool)
    boxes, valid = result.boxes.numpy(), result.valid.numpy()
    total: dict = {}
    for b in range(a.sequences):
        for t in range(boxes.shape[1]):
            counts = classify(boxes[b, t][valid[b, t]], true[b, t][visible[b, t]])
            for k, v in counts.items():
                total[k] = total.get(k, 0) + v
    print(json.dumps(total))


if __name__ == "__main__":
    main()
