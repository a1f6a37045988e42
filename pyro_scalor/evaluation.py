"""Tracking evaluation of a trained SCALOR on a dataset split, with pictures.

``evaluate`` tracks every sequence with posterior modes, scores predicted boxes (presence > 0.5)
against ground truth with :func:`pyro_scalor.metrics.tracking_metrics`, and reports MOTA, MOTP,
IDF1, precision, recall, count MAE and the fraction of matched ground-truth frames explained by
propagated (not rediscovered) objects after each object's first visible frame. With
``ignore_edge_area`` > 0, true boxes that touch the frame's edge and cover fewer square pixels
(slivers of objects entering or leaving the view) are don't-care regions (see
:func:`edge_slivers` and ``tracking_metrics``' ``gt_ignore``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from pyro_scalor.metrics import tracking_metrics

log = logging.getLogger(__name__)

METRIC_KEYS = (
    "mota",
    "motp",
    "motp_px",
    "idf1",
    "precision",
    "recall",
    "count_mae",
    "propagated_fraction",
    "id_switches",
)


def evaluate(
    scalor,
    preset: str,
    split: str = "test",
    *,
    num_sequences: int | None = None,
    batch_size: int = 16,
    cache_dir=None,
    progress: bool = True,
    ignore_edge_area: float = 0.0,
) -> tuple[dict, dict]:
    """Score ``scalor`` on ``split`` of data ``preset``.

    ``ignore_edge_area`` (square pixels, default 0: score every visible object) makes smaller
    true boxes at the frame's edge don't-care. Returns ``(metrics, example)``: the metrics dict
    (see module doc) plus ``num_sequences``, ``seconds`` and ``ignore_edge_area``, and the
    tracked first batch (videos and results) for pictures.
    """
    from pyro_scalor.data import load_dataset

    if not ignore_edge_area >= 0:
        raise ValueError(f"ignore_edge_area must be >= 0, got {ignore_edge_area}")
    ds = load_dataset(preset, split, num_sequences=num_sequences, cache_dir=cache_dir)
    start = time.perf_counter()
    keys = ("boxes", "ids", "valid", "discovered")
    preds: dict[str, list] = {k: [] for k in keys}
    gts: dict[str, list] = {"boxes": [], "ids": [], "visible": []}
    example = None
    for lo in tqdm(range(0, len(ds), batch_size), disable=not progress, desc=f"evaluate {split}"):
        items = [ds[i] for i in range(lo, min(lo + batch_size, len(ds)))]
        video = torch.stack([it["video"] for it in items])
        res = scalor.track(video, chunk=batch_size).to("cpu")
        for k in keys:
            preds[k].append(getattr(res, k).numpy())
        for k in gts:
            gts[k].append(np.stack([np.asarray(it[k]) for it in items]))
        if example is None:
            example = {"video": video, "result": res}
    p = {k: np.concatenate(v) for k, v in preds.items()}
    g = {k: np.concatenate(v) for k, v in gts.items()}
    ignore = None
    if ignore_edge_area > 0:
        size = scalor.config.image_size
        ignore = edge_slivers(g["boxes"], g["visible"], size, size, ignore_edge_area)
    metrics = tracking_metrics(
        p["boxes"],
        p["ids"],
        p["valid"],
        g["boxes"],
        g["ids"],
        g["visible"],
        pred_propagated=p["valid"] & ~p["discovered"],
        gt_ignore=ignore,
    )
    metrics = {k: _plain(v) for k, v in metrics.items()}
    metrics["ignore_edge_area"] = float(ignore_edge_area)
    metrics["num_sequences"] = len(ds)
    metrics["seconds"] = time.perf_counter() - start
    metrics["preset"] = preset
    metrics["split"] = split
    return metrics, example


def edge_slivers(boxes, visible, height: int, width: int, max_area: float) -> np.ndarray:
    """Which true boxes are slivers at the frame's edge.

    Takes pixel boxes (..., 4) as (x_min, y_min, x_max, y_max), max exclusive, and bool
    ``visible`` (...); returns bool (...): visible, touching an edge of the ``height`` x ``width``
    frame, and covering fewer than ``max_area`` square pixels.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    x0, y0, x1, y1 = np.moveaxis(boxes, -1, 0)
    edge = (x0 <= 0) | (y0 <= 0) | (x1 >= width) | (y1 >= height)
    return np.asarray(visible, dtype=bool) & edge & ((x1 - x0) * (y1 - y0) < max_area)


def _plain(v):
    if isinstance(v, (np.floating, float)):
        return float(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    return v


def write_pictures(example: dict, out_dir: str | Path, max_sequences: int = 3) -> list[Path]:
    """Grid PNGs (original / reconstruction / background / boxes) and GIFs for a few sequences."""
    from pyro_scalor.viz import plot_sequence_grid, render_boxes_on_frames, save_gif

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    video, res = example["video"], example["result"]
    paths = []

    def hwc(x):
        return x.permute(0, 2, 3, 1).clamp(0, 1).numpy()

    for i in range(min(max_sequences, video.shape[0])):
        rows = {
            "original": hwc(video[i]),
            "reconstruction": hwc(res.reconstruction[i]),
            "background": hwc(res.background[i]),
            "boxes": hwc(video[i]),
        }
        png = out_dir / f"tracking_{i}.png"
        plot_sequence_grid(
            rows,
            path=png,
            boxes=res.boxes[i].numpy(),
            ids=res.ids[i].numpy(),
            valid=res.valid[i].numpy(),
            discovered=res.discovered[i].numpy(),
            title=f"sequence {i}: white dot = discovered at that frame",
        )
        frames = render_boxes_on_frames(
            hwc(video[i]),
            res.boxes[i].numpy(),
            res.ids[i].numpy(),
            res.valid[i].numpy(),
            discovered=res.discovered[i].numpy(),
        )
        recon = render_boxes_on_frames(
            hwc(res.reconstruction[i]),
            res.boxes[i].numpy(),
            res.ids[i].numpy(),
            np.zeros_like(res.valid[i].numpy()),
        )
        gif = save_gif(np.concatenate([frames, recon], 2), out_dir / f"tracking_{i}.gif", fps=3)
        paths += [png, gif]
    return paths


def format_table(metrics: dict) -> str:
    """A short text table of the main metrics."""
    lines = [f"{'metric':<22}{'value':>10}"]
    for k in METRIC_KEYS:
        if k in metrics:
            v = metrics[k]
            lines.append(f"{k:<22}{v:>10.3f}" if isinstance(v, float) else f"{k:<22}{v:>10}")
    if metrics.get("num_ignored_gt") is not None:
        lines.append(
            f"(true boxes at the edge under {metrics['ignore_edge_area']:g} px^2 ignored: "
            f"{metrics['num_ignored_gt']}, with {metrics['num_ignored_pred']} predictions on them)"
        )
    return "\n".join(lines)


def save_json(metrics: dict, path: str | Path) -> Path:
    """Write ``metrics`` as indented JSON (NaN written as null); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in metrics.items()}
    path.write_text(json.dumps(clean, indent=2, sort_keys=True))
    return path
