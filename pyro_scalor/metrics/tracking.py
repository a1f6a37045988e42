"""Multi-object tracking metrics (MOTA, MOTP, IDF1, precision, recall, count error).

Built on py-motmetrics: one ``MOTAccumulator`` per sequence, fed with an IoU distance
matrix computed here (motmetrics' own ``distances.iou_matrix`` calls ``np.asfarray``, which
numpy 2 removed). Batch results are pooled from raw per-sequence counts rather than with
``MOTAccumulator.merge_event_dataframes`` (broken under pandas >= 2), so e.g. MOTA over a
batch is ``1 - (FN + FP + IDSW) / num_gt`` with every count summed over all sequences.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import motmetrics as mm
import numpy as np

from pyro_scalor.metrics.boxes import box_centers, check_flags, check_tracks, iou_matrix

__all__ = ["tracking_metrics", "iou_matrix"]

logger = logging.getLogger(__name__)

# Raw per-sequence counts taken from motmetrics; everything else is derived from their sums.
_MM_COUNTS = (
    "num_frames",
    "num_objects",
    "num_predictions",
    "num_matches",
    "num_switches",
    "num_false_positives",
    "num_misses",
    "idtp",
    "idfp",
    "idfn",
)
_PAIR_TYPES = ("MATCH", "SWITCH")


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else math.nan


def _dense_ids(ids: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Map the track ids of one sequence to 0..K-1 (invalid entries get -1)."""
    dense = np.full(ids.shape, -1, dtype=np.int64)
    if valid.any():
        _, inverse = np.unique(ids[valid], return_inverse=True)
        dense[valid] = inverse.reshape(-1)
    return dense


def _check_unique(dense: np.ndarray, valid: np.ndarray, name: str, b: int) -> None:
    for t in range(dense.shape[0]):
        present = dense[t][valid[t]]
        if np.unique(present).size != present.size:
            raise ValueError(
                f"{name} repeats a track id within one frame (sequence {b}, frame {t}); "
                "each visible object needs a distinct id in every frame"
            )


def tracking_metrics(
    pred_boxes: Any,
    pred_ids: Any,
    pred_valid: Any,
    gt_boxes: Any,
    gt_ids: Any,
    gt_valid: Any,
    *,
    iou_threshold: float = 0.5,
    pred_propagated: Any = None,
    gt_ignore: Any = None,
) -> dict[str, float | int]:
    """Tracking metrics for a batch of sequences, pooled over all sequences and frames.

    Takes predictions ``boxes (B, T, N, 4)``, ``ids (B, T, N)``, ``(B, N)`` or ``(N,)``, ``valid
    (B, T, N)`` and ground truth with ``O`` objects in place of ``N`` (numpy or torch; a
    single sequence without ``B`` is accepted too). A predicted and a true box may be
    matched when their IoU is at least ``iou_threshold``; the matching cost is ``1 - IoU``.
    Returns a dict of floats (rates; NaN where undefined, e.g. precision with no
    predictions) and ints (counts): ``mota, motp`` (mean 1 - IoU over matches), ``motp_px``
    (mean centre distance in pixels over matches), ``idf1, idp, idr, id_switches,
    precision, recall, count_mae`` (mean over frames with objects of |#pred - #true| /
    #true), ``num_frames, num_gt, num_pred, num_matches`` (all matched pairs, including
    those that are id switches), ``num_false_positives, num_misses``, and, when
    ``pred_propagated (B, T, N)`` bool is given, ``propagated_fraction``: among matched
    pairs at frames after the true object's first visible frame, the fraction whose
    prediction was propagated rather than newly discovered.

    ``gt_ignore`` (shaped like ``gt_valid``, bool) marks "don't care" true objects, as
    MOTChallenge treats distractors: per frame, predictions and true objects are first matched
    one to one (Hungarian on 1 - IoU, IoU at least ``iou_threshold``); a prediction matched to an
    ignored object is dropped, and ignored objects are dropped, so neither counts as a miss, a
    false positive or a match. ``num_ignored_gt`` and ``num_ignored_pred`` count the drops.
    """
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must lie in [0, 1]; got {iou_threshold}")
    ndim = len(_shape_of(pred_boxes))
    if ndim not in (3, 4):
        raise ValueError(
            f"pred_boxes must have shape (B, T, N, 4), or (T, N, 4) for one sequence; "
            f"got {_shape_of(pred_boxes)}"
        )
    batched = ndim == 4
    p_boxes, p_ids, p_valid = check_tracks(
        pred_boxes, pred_ids, pred_valid, name="pred", batched=batched
    )
    g_boxes, g_ids, g_valid = check_tracks(gt_boxes, gt_ids, gt_valid, name="gt", batched=batched)
    if not batched:
        p_boxes, p_ids, p_valid = p_boxes[None], p_ids[None], p_valid[None]
        g_boxes, g_ids, g_valid = g_boxes[None], g_ids[None], g_valid[None]
    if p_boxes.shape[:2] != g_boxes.shape[:2]:
        raise ValueError(
            f"pred_boxes has (B, T) = {p_boxes.shape[:2]} but gt_boxes has (B, T) = "
            f"{g_boxes.shape[:2]}; predictions and ground truth must cover the same "
            "sequences and frames"
        )
    propagated = None
    if pred_propagated is not None:
        dims = ("B", "T", "N") if batched else ("T", "N")
        shape = p_valid.shape if batched else p_valid.shape[1:]
        propagated = check_flags(pred_propagated, "pred_propagated", shape, dims)
        if not batched:
            propagated = propagated[None]

    n_ignored_gt = n_ignored_pred = 0
    if gt_ignore is not None:
        dims = ("B", "T", "O") if batched else ("T", "O")
        shape = g_valid.shape if batched else g_valid.shape[1:]
        ignore = check_flags(gt_ignore, "gt_ignore", shape, dims)
        ignore = (ignore if batched else ignore[None]) & g_valid
        p_valid, g_valid, n_ignored_pred = _drop_ignored(
            p_boxes, p_valid, g_boxes, g_valid, ignore, float(iou_threshold)
        )
        n_ignored_gt = int(ignore.sum())

    accountant = mm.metrics.create()
    totals = dict.fromkeys(_MM_COUNTS, 0)
    sum_iou_dist = 0.0
    sum_center_dist = 0.0
    n_later_pairs = 0
    n_later_propagated = 0
    n_batch, n_frames = p_boxes.shape[:2]

    for b in range(n_batch):
        g_dense = _dense_ids(g_ids[b], g_valid[b])
        p_dense = _dense_ids(p_ids[b], p_valid[b])
        _check_unique(g_dense, g_valid[b], "gt_ids", b)
        _check_unique(p_dense, p_valid[b], "pred_ids", b)
        # slot_of_*[t, k]: which slot holds dense id k at frame t (-1 if none)
        slot_of_gt = np.full((n_frames, int(g_dense.max(initial=-1)) + 1), -1, dtype=np.int64)
        slot_of_pred = np.full((n_frames, int(p_dense.max(initial=-1)) + 1), -1, dtype=np.int64)
        acc = mm.MOTAccumulator(auto_id=False)
        for t in range(n_frames):
            gi = np.flatnonzero(g_valid[b, t])
            pi = np.flatnonzero(p_valid[b, t])
            slot_of_gt[t, g_dense[t, gi]] = gi
            slot_of_pred[t, p_dense[t, pi]] = pi
            iou = iou_matrix(g_boxes[b, t, gi], p_boxes[b, t, pi])
            dist = 1.0 - iou
            dist[iou < iou_threshold] = np.nan
            acc.update(g_dense[t, gi].tolist(), p_dense[t, pi].tolist(), dist, frameid=t)

        summary = accountant.compute(acc, metrics=list(_MM_COUNTS), return_dataframe=False)
        for key in _MM_COUNTS:
            totals[key] += summary[key]

        events = acc.mot_events
        pairs = events[events["Type"].isin(_PAIR_TYPES)]
        if len(pairs) == 0:
            continue
        frame = pairs.index.get_level_values("FrameId").to_numpy(dtype=np.int64)
        oid = pairs["OId"].to_numpy(dtype=np.float64).astype(np.int64)
        hid = pairs["HId"].to_numpy(dtype=np.float64).astype(np.int64)
        g_slot = slot_of_gt[frame, oid]
        p_slot = slot_of_pred[frame, hid]
        if (g_slot < 0).any() or (p_slot < 0).any():  # pragma: no cover - internal invariant
            raise RuntimeError("motmetrics reported a match between objects absent from a frame")
        sum_iou_dist += float(pairs["D"].to_numpy(dtype=np.float64).sum())
        delta = box_centers(g_boxes[b, frame, g_slot]) - box_centers(p_boxes[b, frame, p_slot])
        sum_center_dist += float(np.linalg.norm(delta, axis=-1).sum())
        if propagated is not None:
            first_seen = np.argmax(slot_of_gt >= 0, axis=0)  # first frame of each dense gt id
            later = frame > first_seen[oid]
            n_later_pairs += int(later.sum())
            n_later_propagated += int(propagated[b, frame[later], p_slot[later]].sum())

    n_gt = int(totals["num_objects"])
    n_pred = int(totals["num_predictions"])
    n_matched = int(totals["num_matches"] + totals["num_switches"])
    n_switches = int(totals["num_switches"])
    n_fp = int(totals["num_false_positives"])
    n_miss = int(totals["num_misses"])
    idtp = float(totals["idtp"])
    if n_gt != int(g_valid.sum()) or n_pred != int(p_valid.sum()):  # pragma: no cover
        raise RuntimeError("motmetrics counted a different number of objects than were given")

    gt_count = g_valid.sum(axis=-1).reshape(-1).astype(np.float64)
    pred_count = p_valid.sum(axis=-1).reshape(-1).astype(np.float64)
    has_gt = gt_count > 0
    count_mae = (
        float(np.mean(np.abs(pred_count[has_gt] - gt_count[has_gt]) / gt_count[has_gt]))
        if has_gt.any()
        else math.nan
    )

    result: dict[str, float | int] = {
        "mota": 1.0 - _ratio(n_miss + n_fp + n_switches, n_gt),
        "motp": _ratio(sum_iou_dist, n_matched),
        "motp_px": _ratio(sum_center_dist, n_matched),
        "idf1": _ratio(2.0 * idtp, n_gt + n_pred),
        "idp": _ratio(idtp, n_pred),
        "idr": _ratio(idtp, n_gt),
        "id_switches": n_switches,
        "precision": _ratio(n_matched, n_pred),
        "recall": _ratio(n_matched, n_gt),
        "count_mae": count_mae,
        "num_frames": int(totals["num_frames"]),
        "num_gt": n_gt,
        "num_pred": n_pred,
        "num_matches": n_matched,
        "num_false_positives": n_fp,
        "num_misses": n_miss,
    }
    if gt_ignore is not None:
        result["num_ignored_gt"] = n_ignored_gt
        result["num_ignored_pred"] = n_ignored_pred
    if propagated is not None:
        result["propagated_fraction"] = _ratio(n_later_propagated, n_later_pairs)
    logger.debug("tracking metrics over %d sequences x %d frames: %s", n_batch, n_frames, result)
    return result


def _drop_ignored(p_boxes, p_valid, g_boxes, g_valid, ignore, iou_threshold):
    """Drop ignored true objects and the predictions matched to them, frame by frame.

    Takes boxes (B, T, N|O, 4) and bool valid/ignore arrays; returns new ``(p_valid, g_valid,
    number of predictions dropped)`` (copies; the inputs are unchanged).
    """
    p_valid, g_valid = p_valid.copy(), g_valid.copy()
    dropped = 0
    for b, t in zip(*np.nonzero(ignore.any(-1))):
        gi = np.flatnonzero(g_valid[b, t])
        pi = np.flatnonzero(p_valid[b, t])
        if pi.size:
            iou = iou_matrix(g_boxes[b, t, gi], p_boxes[b, t, pi])
            cost = np.where(iou >= iou_threshold, 1.0 - iou, 2.0)
            rows, cols = mm.lap.linear_sum_assignment(cost)
            hit = (cost[rows, cols] <= 1.0) & ignore[b, t, gi[rows]]
            p_valid[b, t, pi[cols[hit]]] = False
            dropped += int(hit.sum())
        g_valid[b, t] &= ~ignore[b, t]
    return p_valid, g_valid, dropped


def _shape_of(x: Any) -> tuple[int, ...]:
    """Shape of an array-like or tensor without copying it to numpy."""
    shape = getattr(x, "shape", None)
    if shape is None:
        return np.shape(x)
    return tuple(shape)
