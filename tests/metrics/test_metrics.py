"""Tests for pyro_scalor.metrics: IoU and tracking metrics on hand-computed cases."""

from __future__ import annotations

import math

import motmetrics as mm
import numpy as np
import pytest
import torch

from pyro_scalor.metrics import iou_matrix, tracking_metrics

# ----------------------------------------------------------------------------- helpers


def square(x: float, y: float, size: float = 4.0) -> list[float]:
    return [x, y, x + size, y + size]


def moving_tracks(t_len: int = 4, n_obj: int = 3) -> np.ndarray:
    """(T, N, 4) boxes of well separated squares moving right by 1 px a frame."""
    return np.array(
        [[square(2.0 + t + 20 * n, 5.0 + 15 * n) for n in range(n_obj)] for t in range(t_len)]
    )


def run_single(pred_boxes, pred_ids, pred_valid, gt_boxes, gt_ids, gt_valid, **kw):
    """Evaluate one sequence by adding the batch dim."""

    def add_b(x):
        return None if x is None else np.asarray(x)[None]

    for key in ("pred_propagated", "gt_ignore"):
        if key in kw:
            kw[key] = add_b(kw[key])
    return tracking_metrics(
        add_b(pred_boxes),
        add_b(pred_ids),
        add_b(pred_valid),
        add_b(gt_boxes),
        add_b(gt_ids),
        add_b(gt_valid),
        **kw,
    )


# ----------------------------------------------------------------------------- iou_matrix


def test_iou_matrix_values():
    a = np.array([[0, 0, 4, 4], [0, 0, 2, 2]], dtype=float)
    b = np.array([[0, 0, 4, 4], [2, 0, 6, 4], [4, 0, 8, 4], [10, 10, 12, 12]], dtype=float)
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 4)
    assert iou.dtype == np.float64
    # identical, half overlap (8 / 24), touching edges (max exclusive) and disjoint
    np.testing.assert_allclose(iou[0], [1.0, 8.0 / 24.0, 0.0, 0.0])
    np.testing.assert_allclose(iou[1], [4.0 / 16.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(iou_matrix(b, a), iou.T)


def test_iou_matrix_empty_and_degenerate():
    assert iou_matrix(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
    assert iou_matrix(np.zeros((2, 4)), np.zeros((0, 4))).shape == (2, 0)
    # zero-area boxes (and an inverted one) have IoU 0 with everything, even themselves
    degenerate = np.array([[1, 1, 1, 1], [3, 3, 2, 2]], dtype=float)
    np.testing.assert_array_equal(iou_matrix(degenerate, degenerate), np.zeros((2, 2)))
    np.testing.assert_allclose(
        iou_matrix(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), [[1.0, 0.0, 3.0, 2.0]]), [[1.0 / 3.0]]
    )


def test_iou_matrix_shape_errors():
    with pytest.raises(ValueError, match=r"a must have shape \(num_boxes, 4\)"):
        iou_matrix(np.zeros((3,)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"b must have shape \(num_boxes, 4\).*\(2, 5\)"):
        iou_matrix(np.zeros((3, 4)), np.zeros((2, 5)))


# ----------------------------------------------------------------------------- tracking


def test_perfect_tracking():
    boxes = moving_tracks()
    ids = np.array([1, 2, 3])
    valid = np.ones((4, 3), dtype=bool)
    m = run_single(boxes, np.broadcast_to(ids, (4, 3)), valid, boxes, ids, valid)
    assert m["mota"] == 1.0
    assert m["idf1"] == 1.0
    assert m["precision"] == 1.0 and m["recall"] == 1.0
    assert m["count_mae"] == 0.0
    assert m["motp"] == 0.0 and m["motp_px"] == 0.0
    assert m["id_switches"] == 0 and isinstance(m["id_switches"], int)
    assert (m["num_frames"], m["num_gt"], m["num_pred"], m["num_matches"]) == (4, 12, 12, 12)
    assert m["num_false_positives"] == 0 and m["num_misses"] == 0
    assert "propagated_fraction" not in m


def test_prediction_ids_need_not_equal_ground_truth_ids():
    boxes = moving_tracks()
    valid = np.ones((4, 3), dtype=bool)
    m = run_single(boxes, np.array([7, 100, -3]), valid, boxes, np.array([1, 2, 3]), valid)
    assert m["mota"] == 1.0 and m["idf1"] == 1.0


def test_identity_swap():
    boxes = moving_tracks(t_len=4, n_obj=2)
    valid = np.ones((4, 2), dtype=bool)
    # the tracker's ids swap between the two objects from frame 2 on
    pred_ids = np.array([[1, 2], [1, 2], [2, 1], [2, 1]])
    m = run_single(boxes, pred_ids, valid, boxes, np.array([1, 2]), valid)
    assert m["id_switches"] == 2
    assert m["mota"] == pytest.approx(1.0 - 2 / 8)
    assert m["precision"] == 1.0 and m["recall"] == 1.0
    assert m["num_matches"] == 8  # switches are matches too
    # each true object agrees with one predicted id for 2 of its 4 frames
    assert m["idf1"] == pytest.approx(2 * 4 / (8 + 8))
    assert m["motp"] == 0.0


def test_miss():
    boxes = moving_tracks(t_len=3, n_obj=2)
    gt_valid = np.ones((3, 2), dtype=bool)
    pred_valid = gt_valid.copy()
    pred_valid[1, 1] = False  # object 2 missed in frame 1, found again in frame 2
    m = run_single(boxes, np.array([1, 2]), pred_valid, boxes, np.array([1, 2]), gt_valid)
    assert m["num_misses"] == 1 and m["num_false_positives"] == 0 and m["id_switches"] == 0
    assert m["mota"] == pytest.approx(5 / 6)
    assert m["recall"] == pytest.approx(5 / 6)
    assert m["precision"] == 1.0
    assert m["count_mae"] == pytest.approx((0 + 0.5 + 0) / 3)
    assert m["idf1"] == pytest.approx(2 * 5 / (6 + 5))


def test_false_positive():
    gt = moving_tracks(t_len=3, n_obj=2)
    pred = np.concatenate([gt, np.array([square(50, 50)] * 3)[:, None]], axis=1)
    pred_valid = np.array([[True, True, True], [True, True, False], [True, True, False]])
    m = run_single(
        pred, np.array([1, 2, 3]), pred_valid, gt, np.array([1, 2]), np.ones((3, 2), bool)
    )
    assert m["num_false_positives"] == 1 and m["num_misses"] == 0
    assert m["mota"] == pytest.approx(1 - 1 / 6)
    assert m["precision"] == pytest.approx(6 / 7)
    assert m["recall"] == 1.0
    assert m["count_mae"] == pytest.approx(0.5 / 3)
    assert m["num_pred"] == 7 and m["num_gt"] == 6


def test_ignored_ground_truth_is_neither_missed_nor_matched():
    # 3 objects over 3 frames; object 3 is "don't care" at frames 0 and 1
    gt = moving_tracks(t_len=3, n_obj=3)
    gt_ids = np.array([1, 2, 3])
    gt_valid = np.ones((3, 3), dtype=bool)
    ignore = np.zeros((3, 3), dtype=bool)
    ignore[:2, 2] = True
    pred_valid = gt_valid.copy()
    pred_valid[0, 2] = False  # the ignored object missed at frame 0: no miss
    pred_valid[2, 2] = False  # the same object missed at frame 2, not ignored: a miss
    # frame 1: found (dropped with it); plus a false positive far from everything at frame 1
    pred = np.concatenate([gt, np.array([square(50, 50)] * 3)[:, None]], axis=1)
    pred_valid = np.concatenate([pred_valid, np.array([[False], [True], [False]])], axis=1)
    m = run_single(pred, np.array([1, 2, 3, 4]), pred_valid, gt, gt_ids, gt_valid, gt_ignore=ignore)
    assert m["num_gt"] == 7 and m["num_ignored_gt"] == 2
    assert m["num_ignored_pred"] == 1 and m["num_pred"] == 7
    assert m["num_misses"] == 1 and m["num_false_positives"] == 1
    assert m["mota"] == pytest.approx(1 - 2 / 7)
    # without the option the same predictions score one more miss and one more match
    plain = run_single(pred, np.array([1, 2, 3, 4]), pred_valid, gt, gt_ids, gt_valid)
    assert plain["num_gt"] == 9 and plain["num_misses"] == 2 and plain["num_matches"] == 7
    assert "num_ignored_gt" not in plain
    # an ignore flag on an absent object changes nothing; a wrong shape is refused
    only_absent = np.zeros((3, 3), dtype=bool)
    gt_valid[0, 1] = False
    only_absent[0, 1] = True
    a = run_single(gt, gt_ids, gt_valid, gt, gt_ids, gt_valid, gt_ignore=only_absent)
    assert a["num_ignored_gt"] == 0 and a["mota"] == 1.0
    with pytest.raises(ValueError, match="gt_ignore"):
        run_single(gt, gt_ids, gt_valid, gt, gt_ids, gt_valid, gt_ignore=only_absent[:2])


def test_empty_frame():
    boxes = moving_tracks(t_len=3, n_obj=2)
    valid = np.ones((3, 2), dtype=bool)
    valid[1] = False  # no object and no prediction in frame 1
    m = run_single(boxes, np.array([1, 2]), valid, boxes, np.array([1, 2]), valid)
    assert m["num_frames"] == 3
    assert m["mota"] == 1.0 and m["idf1"] == 1.0 and m["id_switches"] == 0
    assert m["count_mae"] == 0.0  # frames without objects are left out of the average
    # a prediction in a frame without objects is a false positive but not a count error
    pred_valid = valid.copy()
    pred_valid[1, 0] = True
    m = run_single(boxes, np.array([1, 2]), pred_valid, boxes, np.array([1, 2]), valid)
    assert m["num_false_positives"] == 1
    assert m["count_mae"] == 0.0
    assert m["mota"] == pytest.approx(1 - 1 / 4)


def test_nothing_at_all_gives_nan_rates():
    boxes = np.zeros((1, 2, 1, 4))
    none = np.zeros((1, 2, 1), dtype=bool)
    m = tracking_metrics(boxes, np.ones((1, 1)), none, boxes, np.ones((1, 1)), none)
    for key in ("mota", "motp", "motp_px", "idf1", "precision", "recall", "count_mae"):
        assert math.isnan(m[key]), key
    assert m["num_frames"] == 2 and m["num_gt"] == 0 and m["num_pred"] == 0


@pytest.mark.parametrize(
    ("pred_box", "threshold", "matched"),
    [
        ([0.0, 0.0, 4.0, 2.0], 0.5, True),  # IoU exactly 0.5 is allowed
        ([0.0, 0.0, 4.0, 1.96], 0.5, False),  # IoU 0.49
        ([0.0, 0.0, 4.0, 1.96], 0.4, True),
        ([0.0, 0.0, 4.0, 4.0], 1.0, True),
        ([0.0, 0.0, 4.0, 3.9], 1.0, False),
    ],
)
def test_iou_threshold_edges(pred_box, threshold, matched):
    gt = np.array([[[0.0, 0.0, 4.0, 4.0]]])
    pred = np.array([[pred_box]])
    valid = np.ones((1, 1), dtype=bool)
    m = run_single(pred, [1], valid, gt, [1], valid, iou_threshold=threshold)
    if matched:
        iou = iou_matrix(gt[0], pred[0])[0, 0]
        assert m["num_matches"] == 1 and m["mota"] == 1.0
        assert m["motp"] == pytest.approx(1.0 - iou)
        assert m["motp_px"] == pytest.approx((4.0 - pred_box[3]) / 2.0)
    else:
        assert m["num_matches"] == 0
        assert m["num_misses"] == 1 and m["num_false_positives"] == 1
        assert m["mota"] == pytest.approx(-1.0)
        assert math.isnan(m["motp"]) and math.isnan(m["motp_px"])


def test_motp_px_is_pixel_centre_distance():
    gt = np.array([[square(10, 10, 20), square(40, 40, 20)]])
    pred = gt + np.array([[[3.0, 4.0, 3.0, 4.0], [1.0, 0.0, 1.0, 0.0]]])  # shifts 5 px, 1 px
    valid = np.ones((1, 2), dtype=bool)
    m = run_single(pred, [1, 2], valid, gt, [1, 2], valid)
    assert m["num_matches"] == 2
    assert m["motp_px"] == pytest.approx(3.0)
    iou = np.diag(iou_matrix(gt[0], pred[0]))
    assert m["motp"] == pytest.approx(np.mean(1.0 - iou))


def _random_batch(rng: np.random.Generator, b: int, t: int, n: int):
    base = rng.uniform(0, 56, size=(b, 1, n, 2)) + np.cumsum(
        rng.normal(0, 1.5, size=(b, t, n, 2)), axis=1
    )
    gt = np.concatenate([base, base + 8.0], axis=-1)
    gt_valid = rng.random((b, t, n)) < 0.85
    jitter = rng.normal(0, 1.5, size=gt.shape)
    pred = gt + jitter
    pred_valid = gt_valid & (rng.random((b, t, n)) < 0.9)
    pred_valid |= rng.random((b, t, n)) < 0.05  # a few false positives
    pred_ids = np.tile(np.arange(1, n + 1), (b, t, 1))
    swap = rng.random((b, t)) < 0.2  # occasional identity swaps between slots 0 and 1
    pred_ids[swap, 0], pred_ids[swap, 1] = 2, 1
    gt_ids = np.tile(np.arange(n), (b, 1))
    return pred, pred_ids, pred_valid, gt, gt_ids, gt_valid


def test_batch_pooling_equals_pooled_definition():
    rng = np.random.default_rng(3)
    batch = _random_batch(rng, b=3, t=6, n=5)
    pooled = tracking_metrics(*batch)
    singles = [tracking_metrics(*(x[i : i + 1] for x in batch)) for i in range(3)]

    def total(key):
        return sum(s[key] for s in singles)

    assert pooled["num_gt"] == total("num_gt") == int(batch[5].sum())
    assert pooled["num_pred"] == total("num_pred") == int(batch[2].sum())
    for key in ("num_matches", "num_misses", "num_false_positives", "id_switches", "num_frames"):
        assert pooled[key] == total(key), key
    errors = total("num_misses") + total("num_false_positives") + total("id_switches")
    assert pooled["mota"] == pytest.approx(1 - errors / total("num_gt"))
    assert pooled["recall"] == pytest.approx(total("num_matches") / total("num_gt"))
    assert pooled["precision"] == pytest.approx(total("num_matches") / total("num_pred"))
    motp_sum = sum(s["motp"] * s["num_matches"] for s in singles)
    assert pooled["motp"] == pytest.approx(motp_sum / total("num_matches"))
    assert 0 < pooled["mota"] < 1 and pooled["id_switches"] > 0

    # agrees with motmetrics' own per-sequence and overall numbers
    accs = []
    for i in range(3):
        acc = mm.MOTAccumulator(auto_id=False)
        pred, pred_ids, pred_valid, gt, gt_ids, gt_valid = (x[i] for x in batch)
        for t in range(pred.shape[0]):
            g, p = np.flatnonzero(gt_valid[t]), np.flatnonzero(pred_valid[t])
            iou = iou_matrix(gt[t, g], pred[t, p])
            dist = np.where(iou >= 0.5, 1 - iou, np.nan)
            acc.update(gt_ids[g].tolist(), pred_ids[t, p].tolist(), dist, frameid=t)
        accs.append(acc)
    names = ["mota", "motp", "idf1", "precision", "recall", "num_switches"]
    ref = mm.metrics.create().compute_many(
        accs, metrics=names, names=["a", "b", "c"], generate_overall=True
    )
    overall = ref.loc["OVERALL"]
    assert pooled["mota"] == pytest.approx(overall["mota"])
    assert pooled["motp"] == pytest.approx(overall["motp"])
    assert pooled["idf1"] == pytest.approx(overall["idf1"])
    assert pooled["precision"] == pytest.approx(overall["precision"])
    assert pooled["recall"] == pytest.approx(overall["recall"])
    assert pooled["id_switches"] == overall["num_switches"]
    for i, name in enumerate(["a", "b", "c"]):
        assert singles[i]["idf1"] == pytest.approx(ref.loc[name, "idf1"])


def test_pooled_mota_is_not_the_mean_of_sequence_motas():
    # sequence 0: 1 object, always missed (MOTA 0); sequence 1: 3 objects, perfect (MOTA 1)
    t = 2
    gt = np.stack([moving_tracks(t, 3), moving_tracks(t, 3)])
    gt_valid = np.ones((2, t, 3), dtype=bool)
    gt_valid[0, :, 1:] = False
    pred_valid = gt_valid.copy()
    pred_valid[0] = False
    ids = np.tile(np.arange(3), (2, 1))
    m = tracking_metrics(gt, ids, pred_valid, gt, ids, gt_valid)
    assert m["mota"] == pytest.approx(1 - 2 / 8)
    assert m["count_mae"] == pytest.approx((1 + 1 + 0 + 0) / 4)


def test_propagated_fraction():
    t_len = 4
    boxes = moving_tracks(t_len, n_obj=3)
    gt_valid = np.ones((t_len, 2), dtype=bool)
    gt_valid[0, 1] = False  # object B first appears at frame 1
    pred_valid = np.ones((t_len, 3), dtype=bool)
    pred_valid[0, 1] = False
    propagated = np.array(
        [
            # A      B      false positive (never counted)
            [False, False, True],  # frame 0: A discovered (its first frame: not counted)
            [True, False, True],  # frame 1: B discovered in its first frame (not counted)
            [True, True, True],
            [True, False, True],  # B rediscovered at frame 3: counts as not propagated
        ]
    )
    m = run_single(
        boxes,
        [1, 2, 3],
        pred_valid,
        boxes[:, :2],
        [1, 2],
        gt_valid,
        pred_propagated=propagated,
    )
    # pairs after the first frame: A at 1, 2, 3 (all propagated), B at 2 (yes), 3 (no)
    assert m["propagated_fraction"] == pytest.approx(4 / 5)
    assert m["num_false_positives"] == 4


def test_propagated_fraction_nan_without_later_matches():
    boxes = moving_tracks(1, 1)
    valid = np.ones((1, 1), dtype=bool)
    m = run_single(boxes, [1], valid, boxes, [1], valid, pred_propagated=valid)
    assert math.isnan(m["propagated_fraction"])


def test_torch_and_unbatched_inputs_match_numpy():
    rng = np.random.default_rng(0)
    batch = _random_batch(rng, b=1, t=5, n=4)
    ref = tracking_metrics(*batch)
    as_torch = [torch.as_tensor(x) for x in batch]
    assert tracking_metrics(*as_torch) == pytest.approx(ref)
    unbatched = tracking_metrics(*(x[0] for x in batch))
    assert unbatched == pytest.approx(ref)
    # floating point ids holding integers and 0/1 valid masks are accepted
    pred, pred_ids, pred_valid, gt, gt_ids, gt_valid = batch
    alt = tracking_metrics(
        pred, pred_ids.astype(float), pred_valid.astype(np.int64), gt, gt_ids, gt_valid
    )
    assert alt == pytest.approx(ref)


def test_validation_errors():
    boxes = np.zeros((2, 3, 4, 4))
    ids = np.zeros((2, 3, 4), dtype=int) + np.arange(4)
    valid = np.zeros((2, 3, 4), dtype=bool)
    gt = np.zeros((2, 3, 5, 4))
    gt_ids = np.tile(np.arange(5), (2, 1))
    gt_valid = np.zeros((2, 3, 5), dtype=bool)
    ok = (boxes, ids, valid, gt, gt_ids, gt_valid)
    tracking_metrics(*ok)

    def call(**changes):
        args = dict(zip(["pb", "pi", "pv", "gb", "gi", "gv"], ok))
        args.update(changes)
        return tracking_metrics(*args.values())

    with pytest.raises(ValueError, match=r"pred_boxes must have shape \(B, T, N, 4\)"):
        call(pb=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"gt_boxes must have shape \(B, T, N, 4\).*got"):
        call(gb=np.zeros((2, 3, 5, 2)))
    with pytest.raises(ValueError, match=r"pred_ids must have shape \(B, T, N\) = \(2, 3, 4\)"):
        call(pi=np.zeros((2, 3, 5), dtype=int))
    with pytest.raises(ValueError, match=r"gt_valid must have shape \(B, T, N\) = \(2, 3, 5\)"):
        call(gv=np.zeros((2, 3, 4), dtype=bool))
    with pytest.raises(ValueError, match=r"pred_boxes has \(B, T\) = \(2, 3\).*\(2, 4\)"):
        call(gb=np.zeros((2, 4, 5, 4)), gi=gt_ids, gv=np.zeros((2, 4, 5), dtype=bool))
    with pytest.raises(ValueError, match="pred_valid must be boolean"):
        call(pv=np.full((2, 3, 4), 0.7))
    with pytest.raises(TypeError, match="gt_ids must hold integer track ids"):
        call(gi=np.zeros((2, 5), dtype=bool))
    with pytest.raises(ValueError, match="repeats a track id.*sequence 1, frame 2"):
        bad_valid = valid.copy()
        bad_valid[1, 2, :2] = True
        call(pi=np.zeros((2, 3, 4), dtype=int), pv=bad_valid)
    with pytest.raises(ValueError, match="NaN or infinite"):
        bad = gt.copy()
        bad[0, 0, 0, 0] = np.nan
        good_valid = gt_valid.copy()
        good_valid[0, 0, 0] = True
        call(gb=bad, gv=good_valid)
    with pytest.raises(ValueError, match="iou_threshold"):
        tracking_metrics(*ok, iou_threshold=1.5)
    with pytest.raises(ValueError, match=r"pred_propagated must have shape \(B, T, N\)"):
        tracking_metrics(*ok, pred_propagated=np.zeros((2, 3, 5), dtype=bool))


def test_nan_boxes_of_invalid_entries_are_ignored():
    boxes = moving_tracks(2, 2)
    pred = boxes.copy()
    pred[1, 1] = np.nan
    valid = np.ones((2, 2), dtype=bool)
    pred_valid = valid.copy()
    pred_valid[1, 1] = False
    m = run_single(pred, [1, 2], pred_valid, boxes, [1, 2], valid)
    assert m["num_misses"] == 1 and m["num_matches"] == 3


def test_edge_slivers_are_small_boxes_touching_the_frame_edge():
    from pyro_scalor.eval.tracking import edge_slivers

    boxes = np.array(
        [
            [0, 10, 3, 20],  # 30 px^2 at the left edge: a sliver
            [10, 10, 13, 20],  # 30 px^2 inside the frame: a small whole object, kept
            [54, 60, 64, 64],  # 40 px^2 at the bottom-right corner: not under 40, kept
            [58, 0, 64, 6],  # 36 px^2 at the top edge: a sliver
            [0, 0, 3, 3],  # a sliver, but not visible
        ],
        dtype=np.float32,
    )
    visible = np.array([True, True, True, True, False])
    got = edge_slivers(boxes, visible, 64, 64, 40.0)
    assert got.tolist() == [True, False, False, True, False]
    # leading dimensions pass through
    assert edge_slivers(boxes[None, None], visible[None, None], 64, 64, 40.0).shape == (1, 1, 5)
