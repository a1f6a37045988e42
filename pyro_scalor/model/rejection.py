"""Proposal rejection and the duplicate rules: everything that drops a proposal or ends a tracker.

Proposal rejection (the paper's accept-reject step): drop a proposal whose area is already
explained by propagated objects. Duplicate suppression among the proposals of one frame
(:func:`suppress_duplicates`), a project addition beside the paper's rule: without it two
neighbouring cells often both claim one object at the first frame, and the two copies then
propagate as a duplicate track; and its counterpart among propagated objects
(:func:`suppress_duplicate_tracks`): two trackers that drifted onto one object.

Rejection by mask (``ModelConfig.rejection_rule`` 'mask', the paper's and the official code's
rule): a proposal's pixels are those where its decoded glimpse alpha exceeds
``rejection_proposal_alpha``; the propagated mask is cropped at the proposal's box to the
glimpse's grid, and the overlap ratio is the fraction of the proposal's pixels where it exceeds
``rejection_alpha`` (:func:`mask_overlap_ratio`). Rejection by box ('box'): the fraction of the
proposal's whole box (sampled on an 8 x 8 grid) where the propagated mask exceeds
``rejection_alpha`` (:func:`overlap_ratio`), so a proposal next to a tracked object whose box
overlaps it is rejected even where its own mask does not. Either way a proposal is accepted when
the ratio is at most ``rejection_threshold`` (the paper's tau). Model and guide call the same
function on the same values, so they agree exactly.

:func:`reject_proposals` and :func:`end_duplicate_tracks` apply these rules as the model config
asks; the model and the guide call them at the same point of each frame.
"""

from __future__ import annotations

import torch

from pyro_scalor.model.config import ModelConfig
from pyro_scalor.model.geometry import crop


def overlap_ratio(prop_mask: torch.Tensor, boxes: torch.Tensor, alpha: float, size: int = 8):
    """Propagated mask (..., 1, H, W), proposal boxes (..., N, 4) to ratios (..., N) in [0, 1]."""
    with torch.no_grad():
        covered = (crop(prop_mask, boxes, size) > alpha).to(boxes.dtype)
        return covered.mean((-1, -2, -3))


def mask_overlap_ratio(
    prop_mask: torch.Tensor,
    proposal_alpha: torch.Tensor,
    boxes: torch.Tensor,
    alpha: float,
    proposal_threshold: float,
) -> torch.Tensor:
    """Fraction of each proposal's own pixels that the propagated mask explains, (..., N).

    Takes the propagated mask (..., 1, H, W), the proposals' decoded alpha glimpses
    (..., N, 1, g, g) and their boxes (..., N, 4). A proposal's pixels are its alpha above
    ``proposal_threshold``; a pixel is explained where the propagated mask, cropped at the box
    to g x g, exceeds ``alpha``. A proposal without pixels has ratio 0.
    """
    with torch.no_grad():
        covered = crop(prop_mask, boxes, proposal_alpha.shape[-1]) > alpha
        own = proposal_alpha > proposal_threshold
        explained = (own & covered).sum((-1, -2, -3)).to(boxes.dtype)
        return explained / own.sum((-1, -2, -3)).clamp(min=1).to(boxes.dtype)


def accept_proposals(
    prop_mask: torch.Tensor | None,
    boxes: torch.Tensor,
    threshold: float,
    alpha: float,
    proposal_alpha: torch.Tensor | None = None,
    proposal_threshold: float = 0.3,
) -> torch.Tensor:
    """1.0 where a proposal at ``boxes`` (..., N, 4) is accepted, 0.0 where rejected.

    With ``proposal_alpha`` (..., N, 1, g, g) the rule is by mask (:func:`mask_overlap_ratio`),
    else by box (:func:`overlap_ratio`).
    """
    if prop_mask is None:
        return torch.ones(boxes.shape[:-1], dtype=boxes.dtype, device=boxes.device)
    if proposal_alpha is None:
        ratio = overlap_ratio(prop_mask, boxes, alpha)
    else:
        ratio = mask_overlap_ratio(prop_mask, proposal_alpha, boxes, alpha, proposal_threshold)
    return (ratio <= threshold).to(boxes.dtype)


def _intersections(a: torch.Tensor, b: torch.Tensor):
    """Boxes a (..., N, 4), b (..., M, 4) to (intersection (..., N, M), area_a (..., N, 1),
    area_b (..., 1, M)); areas are clamped away from 0."""
    lo_a, hi_a = a[..., 2:] - a[..., :2], a[..., 2:] + a[..., :2]
    lo_b, hi_b = b[..., 2:] - b[..., :2], b[..., 2:] + b[..., :2]
    side = (
        torch.minimum(hi_a.unsqueeze(-2), hi_b.unsqueeze(-3))
        - torch.maximum(lo_a.unsqueeze(-2), lo_b.unsqueeze(-3))
    ).clamp(min=0)
    area_a = (4 * a[..., 0] * a[..., 1]).clamp(min=1e-12)
    area_b = (4 * b[..., 0] * b[..., 1]).clamp(min=1e-12)
    return side.prod(-1), area_a.unsqueeze(-1), area_b.unsqueeze(-2)


def box_overlap(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """Boxes a (..., N, 4), b (..., M, 4) (default a) as (sx, sy, cx, cy) to (..., N, M):
    intersection over the smaller of the two areas."""
    inter, area_a, area_b = _intersections(a, a if b is None else b)
    return inter / torch.minimum(area_a, area_b)


def box_iou(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """Boxes a (..., N, 4), b (..., M, 4) (default a) as (sx, sy, cx, cy) to IoUs (..., N, M)."""
    inter, area_a, area_b = _intersections(a, a if b is None else b)
    return inter / (area_a + area_b - inter)


def _ranked_above(pres: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """Presence (..., N) and tie-break keys (..., N) (smaller wins) to bool (..., N, N): [i, j] is
    True when object j ranks above object i (higher presence, or equal presence and smaller key)."""
    key = key.expand(pres.shape)
    pi, pj = pres.unsqueeze(-1), pres.unsqueeze(-2)
    return (pj > pi) | ((pj == pi) & (key.unsqueeze(-2) < key.unsqueeze(-1)))


def suppress_duplicates(
    pres: torch.Tensor,
    boxes: torch.Tensor,
    threshold: float,
    kept_pres: torch.Tensor | None = None,
    kept_boxes: torch.Tensor | None = None,
) -> torch.Tensor:
    """1.0 for proposals kept, 0.0 for those suppressed; pres (..., N), boxes (..., N, 4).

    A proposal is suppressed when a present proposal (presence > 0.5) that ranks above it (higher
    presence, ties broken by lower index) overlaps its box by more than ``threshold`` of the
    smaller box's area, or when a present object among ``kept_boxes`` (..., K, 4) with presence
    ``kept_pres`` (..., K) (the propagated objects) does. One vectorised pass, no gradient; model
    and guide call it on the same values, so they agree exactly.
    """
    with torch.no_grad():
        beats = _ranked_above(pres, torch.arange(pres.shape[-1], device=pres.device))
        overlap = box_overlap(boxes) > threshold
        suppressed = (beats & overlap & (pres.unsqueeze(-2) > 0.5)).any(-1)
        if kept_boxes is not None:
            hit = (box_overlap(boxes, kept_boxes) > threshold) & (kept_pres.unsqueeze(-2) > 0.5)
            suppressed = suppressed | hit.any(-1)
        return (~suppressed).to(pres.dtype)


def suppress_duplicate_tracks(
    pres: torch.Tensor, boxes: torch.Tensor, ids: torch.Tensor, threshold: float
) -> torch.Tensor:
    """1.0 for propagated objects kept, 0.0 for those whose tracker ends as a duplicate.

    Takes presence (..., K), boxes (..., K, 4) and track ids (..., K) (smaller = older). An object
    is dropped when a present object (presence > 0.5) that ranks above it (higher presence, ties
    broken by the older id) has a box whose IoU with its box exceeds ``threshold``: two trackers
    that drifted onto one object. No gradient; model and guide agree exactly.
    """
    with torch.no_grad():
        beats = _ranked_above(pres, ids)
        dropped = (beats & (box_iou(boxes) > threshold) & (pres.unsqueeze(-2) > 0.5)).any(-1)
        return (~dropped).to(pres.dtype)


def reject_proposals(
    cfg: ModelConfig,
    pres: torch.Tensor,
    boxes: torch.Tensor,
    prop_mask: torch.Tensor | None,
    discovery_mask: torch.Tensor | None = None,
    prop_pres: torch.Tensor | None = None,
    prop_boxes: torch.Tensor | None = None,
    proposal_alpha: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Proposal presence (..., B, HW) after every rule that drops proposals, and the count.

    Takes the proposals' boxes (..., B, HW, 4); the propagated mask (..., B, 1, H, W) (None at
    t = 0); the discovery mask (B, 1) bool (False: discovery off for that sequence); the
    propagated objects' presence (..., B, K) and boxes (..., B, K, 4) (None at t = 0); the
    proposals' decoded alpha glimpses (..., B, HW, 1, g, g), needed by rejection by mask.
    Rejection (``cfg.rejection``) drops proposals explained by the propagated mask; then, if
    ``cfg.suppression``, duplicate suppression drops proposals whose box overlaps a more present
    proposal's or a present propagated object's. Returns ``(pres, num_rejected (..., B))``:
    proposals with presence > 0.5 that either rule dropped.
    """
    num_rejected = torch.zeros(pres.shape[:-1], device=pres.device)
    if cfg.rejection and prop_mask is not None:
        if cfg.rejection_rule == "mask" and proposal_alpha is None:
            raise ValueError("rejection by mask needs the proposals' decoded alpha")
        accept = accept_proposals(
            prop_mask,
            boxes,
            cfg.rejection_threshold,
            cfg.rejection_alpha,
            proposal_alpha if cfg.rejection_rule == "mask" else None,
            cfg.rejection_proposal_alpha,
        )
        num_rejected = ((pres > 0.5) & (accept < 0.5)).sum(-1).to(pres.dtype)
        pres = pres * accept
    if discovery_mask is not None:
        pres = pres * discovery_mask.to(pres.dtype)
    if cfg.suppression:
        keep = suppress_duplicates(pres, boxes, cfg.suppression_threshold, prop_pres, prop_boxes)
        num_rejected = num_rejected + ((pres > 0.5) & (keep < 0.5)).sum(-1).to(pres.dtype)
        pres = pres * keep
    return pres, num_rejected


def end_duplicate_tracks(
    cfg: ModelConfig, pres: torch.Tensor, boxes: torch.Tensor, ids: torch.Tensor
) -> torch.Tensor:
    """Propagated presence (..., K) with duplicate trackers ended (presence 0) when
    ``cfg.suppression`` is on and ``cfg.track_suppression_threshold`` > 0; else ``pres``.

    Takes the new boxes (..., K, 4) and the track ids (..., K); see
    :func:`suppress_duplicate_tracks`.
    """
    if not (cfg.suppression and cfg.track_suppression_threshold > 0):
        return pres
    return pres * suppress_duplicate_tracks(pres, boxes, ids, cfg.track_suppression_threshold)
