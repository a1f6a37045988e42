"""Proposal rejection: drop a proposal whose area is already explained by propagated objects.

The overlap ratio of a proposal is the fraction of its box (sampled on a ``size`` x ``size``
grid) where the propagated mask exceeds ``alpha``; the proposal is accepted when the ratio is at
most ``threshold`` (the paper's tau). Model and guide call the same function on the same values,
so they agree exactly. The proposal's support is its box rather than its decoded mask: decoding
every cell's glimpse only to test it would dominate the step time.
"""

from __future__ import annotations

import torch

from pyro_scalor.model.geometry import crop


def overlap_ratio(prop_mask: torch.Tensor, boxes: torch.Tensor, alpha: float, size: int = 8):
    """Propagated mask (..., 1, H, W), proposal boxes (..., N, 4) to ratios (..., N) in [0, 1]."""
    with torch.no_grad():
        covered = (crop(prop_mask, boxes, size) > alpha).to(boxes.dtype)
        return covered.mean((-1, -2, -3))


def accept_proposals(
    prop_mask: torch.Tensor | None, boxes: torch.Tensor, threshold: float, alpha: float
) -> torch.Tensor:
    """1.0 where a proposal at ``boxes`` (..., N, 4) is accepted, 0.0 where rejected."""
    if prop_mask is None:
        return torch.ones(boxes.shape[:-1], dtype=boxes.dtype, device=boxes.device)
    return (overlap_ratio(prop_mask, boxes, alpha) <= threshold).to(boxes.dtype)
