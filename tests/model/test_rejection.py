"""Proposal rejection on hand-made propagated masks, with hand-computed overlap ratios."""

from __future__ import annotations

import pytest
import torch

from pyro_scalor.model.config import get_model_config
from pyro_scalor.model.geometry import pixels_to_boxes
from pyro_scalor.model.rejection import (
    accept_proposals,
    box_iou,
    box_overlap,
    end_duplicate_tracks,
    overlap_ratio,
    suppress_duplicate_tracks,
    suppress_duplicates,
)


def square_mask(value: float = 1.0) -> torch.Tensor:
    """A propagated mask (1, 64, 64) with a filled square over pixels [20, 36) x [20, 36)."""
    m = torch.zeros(1, 64, 64)
    m[:, 20:36, 20:36] = value
    return m


def pixel_boxes(*rows) -> torch.Tensor:
    # 8 x 8 pixel boxes whose 8 x 8 sampling grid hits pixel centres exactly
    return pixels_to_boxes(torch.tensor(rows, dtype=torch.float32), 64, 64)


# proposal boxes (x_min, y_min, x_max, y_max) and the fraction of their pixels on the square
ON = (24, 24, 32, 32)  # inside the square: 64 / 64
FAR = (48, 48, 56, 56)  # far away: 0 / 64
HALF = (32, 24, 40, 32)  # columns 32..35 of 32..39 are on the square: 32 / 64
QUARTER = (32, 32, 40, 40)  # a 4 x 4 corner: 16 / 64
EDGE = (36, 24, 44, 32)  # touches the square's right edge from outside: 0 / 64


def test_overlap_ratio_hand_computed():
    boxes = pixel_boxes(ON, FAR, HALF, QUARTER, EDGE)
    ratio = overlap_ratio(square_mask(), boxes, alpha=0.1)
    torch.testing.assert_close(ratio, torch.tensor([1.0, 0.0, 0.5, 0.25, 0.0]))


def test_overlap_ratio_counts_only_mask_values_above_alpha():
    boxes = pixel_boxes(ON, HALF)
    torch.testing.assert_close(overlap_ratio(square_mask(0.05), boxes, 0.1), torch.zeros(2))
    torch.testing.assert_close(
        overlap_ratio(square_mask(0.5), boxes, 0.1), torch.tensor([1.0, 0.5])
    )
    torch.testing.assert_close(overlap_ratio(square_mask(0.5), boxes, 0.6), torch.zeros(2))


def test_proposal_on_the_square_is_rejected_and_far_one_accepted():
    accept = accept_proposals(square_mask(), pixel_boxes(ON, FAR, EDGE), 0.3, 0.1)
    torch.testing.assert_close(accept, torch.tensor([0.0, 1.0, 1.0]))


@pytest.mark.parametrize(
    "threshold, expected",
    [
        (0.3, [0.0, 1.0]),
        (0.45, [0.0, 1.0]),
        (0.5, [1.0, 1.0]),
        (0.6, [1.0, 1.0]),
        (0.2, [0.0, 0.0]),
    ],
)
def test_partial_overlap_is_decided_by_the_threshold(threshold, expected):
    # HALF has ratio 0.5, QUARTER 0.25; accepted when ratio <= threshold
    accept = accept_proposals(square_mask(), pixel_boxes(HALF, QUARTER), threshold, 0.1)
    torch.testing.assert_close(accept, torch.tensor(expected))


def test_no_propagated_mask_accepts_everything():
    boxes = pixel_boxes(ON, FAR, HALF).expand(3, 2, 3, 4)
    accept = accept_proposals(None, boxes, 0.3, 0.1)
    assert accept.shape == (3, 2, 3)
    assert (accept == 1).all()


def test_rejection_broadcasts_over_particles_and_batch():
    # batch of two frames: the square in the first, nothing in the second; a particle dim leads
    masks = torch.stack([square_mask(), torch.zeros(1, 64, 64)])  # (B=2, 1, H, W)
    boxes = pixel_boxes(ON, HALF, FAR).expand(4, 2, 3, 4)  # (P=4, B=2, N=3, 4)
    accept = accept_proposals(masks, boxes, 0.3, 0.1)
    assert accept.shape == (4, 2, 3)
    torch.testing.assert_close(accept[:, 0], torch.tensor([0.0, 0.0, 1.0]).expand(4, 3))
    torch.testing.assert_close(accept[:, 1], torch.ones(4, 3))


# ------------------------------------------------------------------ duplicate suppression
A = (24, 24, 32, 32)  # 8 x 8
A_SHIFT = (26, 24, 34, 32)  # A moved 2 px right: intersection 6 x 8 = 48 of 64 -> 0.75
A_HALF = (28, 24, 36, 32)  # 4 x 8 = 32 of 64 -> 0.5
INNER = (26, 26, 30, 30)  # 4 x 4 inside A: 16 of the smaller 16 -> 1.0
APART = (48, 48, 56, 56)


def test_box_overlap_hand_computed():
    over = box_overlap(pixel_boxes(A, A_SHIFT, A_HALF, INNER, APART))
    assert over.shape == (5, 5)
    torch.testing.assert_close(over[0], torch.tensor([1.0, 0.75, 0.5, 1.0, 0.0]))
    torch.testing.assert_close(over, over.T)


def test_suppression_keeps_the_more_present_of_two_duplicates():
    boxes = pixel_boxes(A, A_SHIFT, APART)
    keep = suppress_duplicates(torch.tensor([0.8, 0.9, 0.9]), boxes, 0.3)
    torch.testing.assert_close(keep, torch.tensor([0.0, 1.0, 1.0]))


def test_suppression_threshold_and_ties():
    boxes = pixel_boxes(A, A_HALF)
    pres = torch.tensor([1.0, 1.0])  # a tie: the lower index wins
    torch.testing.assert_close(suppress_duplicates(pres, boxes, 0.3), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(suppress_duplicates(pres, boxes, 0.5), torch.tensor([1.0, 1.0]))


def test_absent_proposals_suppress_nothing():
    boxes = pixel_boxes(A, INNER)
    keep = suppress_duplicates(torch.tensor([0.4, 0.2]), boxes, 0.3)
    torch.testing.assert_close(keep, torch.ones(2))


def test_suppression_broadcasts_over_particles_and_batch():
    boxes = pixel_boxes(A, A_SHIFT, APART).expand(4, 2, 3, 4)
    pres = torch.tensor([[0.9, 0.95, 0.9], [0.9, 0.1, 0.9]]).expand(4, 2, 3)
    keep = suppress_duplicates(pres, boxes, 0.3)
    assert keep.shape == (4, 2, 3)
    torch.testing.assert_close(keep[:, 0], torch.tensor([0.0, 1.0, 1.0]).expand(4, 3))
    # in the second frame the absent duplicate is dropped, the present one kept
    torch.testing.assert_close(keep[:, 1], torch.tensor([1.0, 0.0, 1.0]).expand(4, 3))


def test_propagated_objects_suppress_overlapping_proposals():
    boxes = pixel_boxes(A, APART, A_HALF)
    pres = torch.tensor([0.9, 0.9, 0.2])
    kept_boxes = pixel_boxes(A_SHIFT, APART)
    # a present propagated object on A_SHIFT suppresses the proposal on A; an absent one on
    # APART suppresses nothing
    keep = suppress_duplicates(pres, boxes, 0.3, torch.tensor([1.0, 0.0]), kept_boxes)
    torch.testing.assert_close(keep, torch.tensor([0.0, 1.0, 0.0]))
    cross = box_overlap(boxes, kept_boxes)
    assert cross.shape == (3, 2)
    torch.testing.assert_close(cross[:, 0], torch.tensor([0.75, 0.0, 0.75]))


# ------------------------------------------------------------------ duplicate tracks
def test_box_iou_hand_computed():
    iou = box_iou(pixel_boxes(A, A_SHIFT, A_HALF, INNER, APART))
    # A vs A_SHIFT: 48 / (64 + 64 - 48); vs A_HALF: 32 / 96; vs INNER: 16 / 64; apart: 0
    torch.testing.assert_close(iou[0], torch.tensor([1.0, 0.6, 1 / 3, 0.25, 0.0]))
    torch.testing.assert_close(iou, iou.T)
    torch.testing.assert_close(box_iou(pixel_boxes(A), pixel_boxes(A_SHIFT)), torch.tensor([[0.6]]))


def test_duplicate_tracks_end_the_younger_at_equal_presence():
    boxes = pixel_boxes(A, A_SHIFT, APART)
    pres = torch.ones(3)
    ids = torch.tensor([7, 3, 9])  # slot 1 holds the older track
    keep = suppress_duplicate_tracks(pres, boxes, ids, 0.5)
    torch.testing.assert_close(keep, torch.tensor([0.0, 1.0, 1.0]))
    # above the pair's IoU (0.6) nothing is dropped
    torch.testing.assert_close(suppress_duplicate_tracks(pres, boxes, ids, 0.7), torch.ones(3))


def test_duplicate_tracks_more_present_wins_and_absent_tracks_drop_nothing():
    boxes = pixel_boxes(A, A_SHIFT)
    ids = torch.tensor([1, 2])
    keep = suppress_duplicate_tracks(torch.tensor([0.7, 0.9]), boxes, ids, 0.5)
    torch.testing.assert_close(keep, torch.tensor([0.0, 1.0]))
    keep = suppress_duplicate_tracks(torch.tensor([0.4, 0.3]), boxes, ids, 0.5)
    torch.testing.assert_close(keep, torch.ones(2))


def test_duplicate_tracks_broadcast_over_particles_and_batch():
    boxes = pixel_boxes(A, A_SHIFT, APART).expand(3, 2, 3, 4)
    pres = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]]).expand(3, 2, 3)
    keep = suppress_duplicate_tracks(pres, boxes, torch.tensor([4, 2, 6]), 0.5)
    assert keep.shape == (3, 2, 3)
    torch.testing.assert_close(keep[:, 0], torch.tensor([0.0, 1.0, 1.0]).expand(3, 3))
    # the second row's duplicate is absent: the present track stays
    torch.testing.assert_close(keep[:, 1], torch.tensor([1.0, 0.0, 1.0]).expand(3, 3))


@pytest.mark.parametrize(
    "changes, ended",
    [
        (dict(suppression=True, track_suppression_threshold=0.5), True),
        (dict(suppression=True, track_suppression_threshold=0.0), False),
        (dict(suppression=False, track_suppression_threshold=0.5), False),
    ],
)
def test_end_duplicate_tracks_follows_the_config(changes, ended):
    cfg = get_model_config("tiny", **changes)
    pres = torch.ones(2)
    out = end_duplicate_tracks(cfg, pres, pixel_boxes(A, A_SHIFT), torch.tensor([2, 1]))
    torch.testing.assert_close(out, torch.tensor([0.0 if ended else 1.0, 1.0]))


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_track_suppression_threshold_is_validated(bad):
    with pytest.raises(ValueError, match="track_suppression_threshold"):
        get_model_config("tiny", track_suppression_threshold=bad)


def _worst_track_iou(threshold: float) -> float:
    """Largest box IoU between two present propagated slots when the tiny guide tracks noise."""
    import pyro
    from pyro import poutine

    from pyro_scalor.api import Scalor

    cfg = get_model_config("tiny", suppression=True, track_suppression_threshold=threshold)
    scalor = Scalor(cfg, seed=0)
    pyro.set_rng_seed(0)
    frames: list = []
    with torch.no_grad():
        poutine.trace(scalor.guide).get_trace(torch.rand(2, 4, 3, 64, 64), record=frames)
    worst = 0.0
    for t in range(1, 4):
        on = (frames[t].presence > 0.5) & ~frames[t].discovered
        iou = box_iou(frames[t].box) * (on.unsqueeze(-1) & on.unsqueeze(-2))
        iou = iou * (1 - torch.eye(iou.shape[-1]))
        worst = max(worst, float(iou.max()))
    return worst


def test_track_suppression_leaves_no_overlapping_trackers_in_the_guide():
    # without the rule this seed leaves two present trackers overlapping (IoU about 0.36)
    assert _worst_track_iou(0.0) > 0.05
    assert _worst_track_iou(0.05) <= 0.05


def test_rejection_by_mask_tests_the_proposals_own_pixels_not_its_box():
    from pyro_scalor.model.rejection import mask_overlap_ratio

    # two proposals at HALF (half of the box lies on the tracked square): one draws only in
    # the box's right half (off the square), one only in its left half (on the square)
    boxes = pixel_boxes(HALF, HALF, FAR)
    alpha = torch.zeros(3, 1, 8, 8)
    alpha[0, :, :, 4:] = 0.9
    alpha[1, :, :, :4] = 0.9
    alpha[2] = 0.2  # below the proposal threshold everywhere: no pixels, ratio 0
    ratio = mask_overlap_ratio(square_mask(), alpha, boxes, alpha=0.1, proposal_threshold=0.3)
    torch.testing.assert_close(ratio, torch.tensor([0.0, 1.0, 0.0]))
    by_mask = accept_proposals(square_mask(), boxes, 0.3, 0.1, alpha, 0.3)
    torch.testing.assert_close(by_mask, torch.tensor([1.0, 0.0, 1.0]))
    by_box = accept_proposals(square_mask(), boxes, 0.3, 0.1)
    torch.testing.assert_close(by_box, torch.tensor([0.0, 0.0, 1.0]))


def test_reject_proposals_follows_the_configured_rule_and_thresholds():
    from pyro_scalor.model.rejection import reject_proposals

    boxes = pixel_boxes(HALF, HALF)
    alpha = torch.zeros(2, 1, 8, 8)
    alpha[0, :, :, 4:] = 0.9
    alpha[1, :, :, :4] = 0.9
    pres = torch.ones(2)
    cfg = get_model_config("tiny")
    assert cfg.rejection_rule == "mask"
    kept, n = reject_proposals(cfg, pres, boxes, square_mask(), proposal_alpha=alpha)
    assert kept.tolist() == [1.0, 0.0] and float(n) == 1.0
    box_cfg = cfg.replace(rejection_rule="box")
    kept, n = reject_proposals(box_cfg, pres, boxes, square_mask(), proposal_alpha=alpha)
    assert kept.tolist() == [0.0, 0.0] and float(n) == 2.0
    # a proposal pixel threshold above the drawn alpha leaves no pixels: nothing is rejected
    loose = cfg.replace(rejection_proposal_alpha=0.95)
    assert reject_proposals(loose, pres, boxes, square_mask(), proposal_alpha=alpha)[
        0
    ].tolist() == [
        1.0,
        1.0,
    ]
    with pytest.raises(ValueError, match="decoded alpha"):
        reject_proposals(cfg, pres, boxes, square_mask())
