"""Delayed discovery: how many of the objects visible in the first frame are found by frame t.

In crowded scenes a grid cell proposes one object per frame, so two objects whose centres share a
cell cannot both be discovered at once; the paper accepts that some are found a frame or two late
(its Appendix B.3). :func:`found_by_frame` measures it: among the true objects visible at t = 0,
the fraction matched by a prediction at some frame t' <= t (one-to-one per frame, Hungarian on
1 - IoU with IoU at least ``iou_threshold``, as the tracking metrics match).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from pyro_scalor.metrics.boxes import check_flags, iou_matrix, to_numpy


def matched_objects(
    pred_boxes: np.ndarray, pred_valid: np.ndarray, gt_boxes: np.ndarray, gt_valid: np.ndarray,
    iou_threshold: float,
) -> np.ndarray:  # fmt: skip
    """(O,) bool: the true objects of one frame matched one to one by a prediction."""
    out = np.zeros(gt_boxes.shape[0], dtype=bool)
    gi, pi = np.flatnonzero(gt_valid), np.flatnonzero(pred_valid)
    if gi.size == 0 or pi.size == 0:
        return out
    iou = iou_matrix(gt_boxes[gi], pred_boxes[pi])
    rows, cols = linear_sum_assignment(1.0 - iou)
    good = iou[rows, cols] >= iou_threshold
    out[gi[rows[good]]] = True
    return out


def found_by_frame(
    pred_boxes: Any,
    pred_valid: Any,
    gt_boxes: Any,
    gt_visible: Any,
    *,
    frames: int = 3,
    iou_threshold: float = 0.5,
) -> list[float]:
    """Fractions of the objects visible at t = 0 found by frame 0, 1, ..., ``frames`` - 1.

    Takes predictions ``boxes (B, T, N, 4)`` and ``valid (B, T, N)`` and ground truth ``boxes
    (B, T, O, 4)`` and ``visible (B, T, O)`` (pixel boxes x0, y0, x1, y1). An object counts as
    found by t when some frame t' <= t matches it (it need not stay visible). Returns a list of
    ``min(frames, T)`` fractions (NaN when no object is visible at t = 0).
    """
    p_boxes = to_numpy(pred_boxes, "pred_boxes").astype(np.float64, copy=False)
    g_boxes = to_numpy(gt_boxes, "gt_boxes").astype(np.float64, copy=False)
    if p_boxes.ndim != 4 or g_boxes.ndim != 4 or p_boxes.shape[:2] != g_boxes.shape[:2]:
        raise ValueError(
            f"need pred_boxes (B, T, N, 4) and gt_boxes (B, T, O, 4) with the same B and T, got "
            f"{p_boxes.shape} and {g_boxes.shape}"
        )
    b, t_len = p_boxes.shape[:2]
    p_valid = check_flags(pred_valid, "pred_valid", p_boxes.shape[:3], ("B", "T", "N"))
    g_valid = check_flags(gt_visible, "gt_visible", g_boxes.shape[:3], ("B", "T", "O"))
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    first = g_valid[:, 0]  # (B, O) the objects visible at t = 0
    total = int(first.sum())
    found = np.zeros_like(first)
    out = []
    for t in range(min(frames, t_len)):
        for i in range(b):
            found[i] |= matched_objects(
                p_boxes[i, t], p_valid[i, t], g_boxes[i, t], g_valid[i, t], iou_threshold
            )
        out.append(float((found & first).sum() / total) if total else float("nan"))
    return out
