"""Tracking evaluation of a trained SCALOR on a dataset split, with pictures.

``evaluate`` tracks every sequence with posterior modes, scores predicted boxes (presence > 0.5)
against ground truth with :func:`pyro_scalor.metrics.tracking_metrics`, and reports MOTA, MOTP,
IDF1, precision, recall, count MAE, the fraction of matched ground-truth frames explained by
propagated (not rediscovered) objects after each object's first visible frame, and
``dropped_discoveries``: present discoveries per frame left out for lack of a free slot (above 0,
the capacity ``max_objects`` is too small for the data), ``box_iou`` (1 - MOTP: the mean IoU of
matched boxes) and ``found_by_frame``: the fractions of the objects visible at t = 0 found by
frames 0, 1 and 2 (delayed discovery, :mod:`pyro_scalor.metrics.discovery_delay`). With
``ignore_edge_area`` > 0, true boxes that touch the frame's edge and cover fewer square pixels
(slivers of objects entering or leaving the view) are don't-care regions (see
:func:`edge_slivers` and ``tracking_metrics``' ``gt_ignore``). :func:`comparison_table` sets the
metrics beside the paper's Table 1.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from pyro_scalor.metrics import tracking_metrics
from pyro_scalor.metrics.discovery_delay import found_by_frame

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
    "dropped_discoveries",
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
    max_objects: int | None = None,
) -> tuple[dict, dict]:
    """Score ``scalor`` on ``split`` of data ``preset``.

    ``ignore_edge_area`` (square pixels, default 0: score every visible object) makes smaller
    true boxes at the frame's edge don't-care; ``max_objects`` tracks with that slot capacity
    (default: the trained one). Returns ``(metrics, example)``: the metrics dict
    (see module doc) plus ``num_sequences``, ``seconds`` and ``ignore_edge_area``, and the
    tracked first batch (videos and results) for pictures.
    """
    from pyro_scalor.data import load_dataset

    if not ignore_edge_area >= 0:
        raise ValueError(f"ignore_edge_area must be >= 0, got {ignore_edge_area}")
    ds = load_dataset(preset, split, num_sequences=num_sequences, cache_dir=cache_dir)
    start = time.perf_counter()
    keys = ("boxes", "ids", "valid", "discovered", "num_dropped")
    preds: dict[str, list] = {k: [] for k in keys}
    gts: dict[str, list] = {"boxes": [], "ids": [], "visible": []}
    example = None
    for lo in tqdm(range(0, len(ds), batch_size), disable=not progress, desc=f"evaluate {split}"):
        items = [ds[i] for i in range(lo, min(lo + batch_size, len(ds)))]
        video = torch.stack([it["video"] for it in items])
        res = scalor.track(video, chunk=batch_size, max_objects=max_objects).to("cpu")
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
    metrics = {k: v.item() if isinstance(v, np.generic) else v for k, v in metrics.items()}
    metrics["box_iou"] = 1.0 - metrics["motp"]
    metrics["found_by_frame"] = found_by_frame(
        p["boxes"], p["valid"], g["boxes"], g["visible"], frames=3
    )
    metrics["dropped_discoveries"] = float(p["num_dropped"].mean())
    metrics["max_objects"] = int(p["valid"].shape[-1])
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


#: SCALOR paper, Table 1 (MOTP there is a pixel distance, our ``motp_px``).
PAPER_TABLE1 = {
    "dsprites-ld": {
        "mota": 0.917,
        "motp_px": 1.34,
        "precision": 0.961,
        "recall": 0.99,
        "count_mae": 0.05,
    },
    "dsprites-md": {
        "mota": 0.888,
        "motp_px": 1.22,
        "precision": 0.97,
        "recall": 0.96,
        "count_mae": 0.05,
    },
    "dsprites-hd": {
        "mota": 0.916,
        "motp_px": 1.34,
        "precision": 0.96,
        "recall": 0.987,
        "count_mae": 0.05,
    },
    "dsprites-vhd": {
        "mota": 0.86,
        "motp_px": 1.16,
        "precision": 0.99,
        "recall": 0.90,
        "count_mae": 0.11,
    },
    "mnist-md": {
        "mota": 0.861,
        "motp_px": 1.21,
        "precision": 0.905,
        "recall": 0.907,
        "count_mae": 0.09,
    },
}


def comparison_table(metrics: dict, preset: str) -> str:
    """Our metrics beside the paper's Table 1 row for data ``preset`` (when there is one)."""
    paper = PAPER_TABLE1.get(preset, {})
    rows = [f"{'metric':<22}{'ours':>10}{'paper':>10}"]
    for key in ("mota", "motp_px", *(k for k in METRIC_KEYS if k not in ("mota", "motp_px"))):
        if key not in metrics or metrics[key] is None:
            continue
        ref = paper.get(key)
        ref_text = f"{ref:>10.3f}" if ref is not None else f"{'-':>10}"
        v = metrics[key]
        ours = f"{v:>10.3f}" if isinstance(v, float) else f"{v:>10}"
        rows.append(f"{key:<22}{ours}{ref_text}")
    return "\n".join(rows)
