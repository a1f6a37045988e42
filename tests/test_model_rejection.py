"""Proposal rejection on hand-made propagated masks, with hand-computed overlap ratios."""

from __future__ import annotations

import pytest
import torch

from pyro_scalor.model.geometry import pixels_to_boxes
from pyro_scalor.model.rejection import accept_proposals, overlap_ratio


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
