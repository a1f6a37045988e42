"""Measured properties of a generated split: visible objects per frame, box sizes, timing."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from pyro_scalor.data.config import DataConfig
from pyro_scalor.data.generator import build_bank, generate_sequence
from pyro_scalor.data.presets import PAPER_VISIBLE_AVERAGE


def overlapping(boxes: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Bool (T, O): the visible object's box intersects another visible object's box.

    Takes boxes (T, O, 4) and visible (T, O).
    """
    a = boxes[:, :, None]
    b = boxes[:, None, :]
    w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    both = visible[:, :, None] & visible[:, None, :]
    hit = (w > 0) & (h > 0) & both
    o = boxes.shape[1]
    hit &= ~np.eye(o, dtype=bool)[None]
    return hit.any(axis=2)


def measure(
    config: DataConfig, split: str = "test", num_sequences: int = 200, *, progress: bool = False
) -> dict[str, Any]:
    """Generate ``num_sequences`` sequences of ``split`` and summarise them as a JSON-able dict.

    Keys: visible objects per frame (mean, min, max, mean per time step), objects per sequence,
    box side ranges (whole objects and view-clipped boxes), objects entering and leaving the
    view, the fraction of visible objects whose box overlaps another, seconds to generate, and
    the paper's average where the preset has one.
    """
    from tqdm.auto import tqdm

    if num_sequences < 1:
        raise ValueError(f"num_sequences must be >= 1, got {num_sequences}")
    start = time.perf_counter()
    bank = build_bank(config, split)
    counts, objects, sides, clipped = [], [], [], []
    entering = leaving = overlaps = visible_total = 0
    for i in tqdm(range(num_sequences), desc=f"{config.name} stats", disable=not progress):
        seq = generate_sequence(config, split, i, bank)
        vis = seq.visible
        counts.append(vis.sum(axis=1))
        scene = seq.scene
        objects.append(scene.num_objects)
        tight = np.stack([bank.boxes[s][k] for s, k in zip(scene.size, scene.sprite)])
        sides.append(np.concatenate([tight[:, 2] - tight[:, 0], tight[:, 3] - tight[:, 1]]))
        shown = seq.boxes[vis]
        clipped.append(np.concatenate([shown[:, 2] - shown[:, 0], shown[:, 3] - shown[:, 1]]))
        entering += int((~vis[:-1] & vis[1:]).sum())
        leaving += int((vis[:-1] & ~vis[1:]).sum())
        overlaps += int(overlapping(seq.boxes, vis).sum())
        visible_total += int(vis.sum())
    seconds = time.perf_counter() - start
    counts = np.stack(counts)  # (N, T)
    sides = np.concatenate(sides)
    clipped = np.concatenate(clipped)
    result: dict[str, Any] = {
        "preset": config.name,
        "split": split,
        "num_sequences": num_sequences,
        "seq_len": config.seq_len,
        "objects_per_sequence": {
            "min": int(min(objects)),
            "max": int(max(objects)),
            "mean": float(np.mean(objects)),
        },
        "visible_per_frame": {
            "mean": float(counts.mean()),
            "min": int(counts.min()),
            "max": int(counts.max()),
        },
        "visible_per_frame_by_step": [round(float(v), 3) for v in counts.mean(axis=0)],
        "object_box_side_px": {"min": int(sides.min()), "max": int(sides.max())},
        "visible_box_side_px": {
            "min": float(clipped.min()) if clipped.size else None,
            "max": float(clipped.max()) if clipped.size else None,
        },
        "entering_per_sequence": entering / num_sequences,
        "leaving_per_sequence": leaving / num_sequences,
        "overlapping_fraction": overlaps / max(visible_total, 1),
        "seconds": seconds,
    }
    paper = PAPER_VISIBLE_AVERAGE.get(config.name)
    if paper is not None:
        result["paper_visible_average"] = paper
        result["relative_difference"] = (result["visible_per_frame"]["mean"] - paper) / paper
    return result
