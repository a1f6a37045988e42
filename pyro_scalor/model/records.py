"""Typed per-frame records that the model and the guide fill for tracking, pictures and logs.

Pass a list as ``record=`` to either program: after each frame it appends one record, detached
from the graph. The guide appends a :class:`GuideFrame` (the inferred objects and how many were
propagated, discovered and rejected), the model a :class:`ModelFrame` (the objects it rendered,
the rendered frame and its layers). :func:`stack_frames` turns the list into one record of the
whole video. Shapes below are per frame; a particle dim may lead.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeVar

import torch

from pyro_scalor.model.geometry import mask_boxes
from pyro_scalor.model.slots import Slots


@dataclass
class FrameObjects:
    """The K object slots after a frame's merge.

    presence (B, K) in [0, 1]; box (B, K, 4) the attention window (z_where) as
    ``(sx, sy, cx, cy)`` (see :mod:`pyro_scalor.model.geometry`); ids (B, K) int64 track ids
    (0 = none); discovered (B, K) bool, discovered at this frame (else propagated); depth (B, K).
    """

    presence: torch.Tensor
    box: torch.Tensor
    ids: torch.Tensor
    discovered: torch.Tensor
    depth: torch.Tensor

    @staticmethod
    def slot_fields(slots: Slots) -> dict[str, torch.Tensor]:
        """The :class:`FrameObjects` fields of ``slots``, detached."""
        return dict(
            presence=slots.pres.detach(),
            box=slots.box.detach(),
            ids=slots.ids,
            discovered=slots.discovered,
            depth=slots.depth.detach().squeeze(-1),
        )


@dataclass
class ModelFrame(FrameObjects):
    """What the model rendered at one frame: its objects (see :class:`FrameObjects`) and

    reconstruction and background (B, C, H, W); foreground_mask (B, 1, H, W); mask_box
    (B, K, 4) pixel ``(x_min, y_min, x_max, y_max)`` (max exclusive) tight around each object's
    rendered mask (alpha > 0.5, before presence); mask_area (B, K) that mask's pixels.
    """

    reconstruction: torch.Tensor
    background: torch.Tensor
    foreground_mask: torch.Tensor
    mask_box: torch.Tensor
    mask_area: torch.Tensor

    @classmethod
    def of(
        cls,
        slots: Slots,
        frame: torch.Tensor,
        background: torch.Tensor,
        foreground_mask: torch.Tensor,
        alpha: torch.Tensor,
    ) -> ModelFrame:
        """The record of a rendered frame; ``alpha`` (B, K, 1, H, W) the objects' pasted masks."""
        box, area = mask_boxes(alpha.detach().squeeze(-3) > 0.5)
        return cls(
            **cls.slot_fields(slots),
            reconstruction=frame.detach(),
            background=background.detach(),
            foreground_mask=foreground_mask.detach(),
            mask_box=box,
            mask_area=area,
        )


@dataclass
class GuideFrame(FrameObjects):
    """What the guide inferred at one frame: its objects (see :class:`FrameObjects`) and

    num_propagated (B) the summed presence of the propagated objects (before the merge);
    num_discovered (B) the summed presence of the accepted proposals; num_rejected (B) the
    proposals with presence > 0.5 that rejection or suppression dropped; num_dropped (B) the
    accepted proposals with presence > 0.5 left out of the merge for lack of a free slot (the
    capacity ``max_objects`` is too small when this is often above 0).
    """

    num_propagated: torch.Tensor
    num_discovered: torch.Tensor
    num_rejected: torch.Tensor
    num_dropped: torch.Tensor

    @classmethod
    def of(
        cls,
        slots: Slots,
        num_propagated: torch.Tensor,
        proposals: Slots,
        num_rejected: torch.Tensor,
        num_dropped: torch.Tensor,
    ) -> GuideFrame:
        """The record of a frame: merged ``slots``, the accepted ``proposals`` and the count of
        present proposals the merge dropped."""
        return cls(
            **cls.slot_fields(slots),
            num_propagated=num_propagated.detach(),
            num_discovered=proposals.pres.detach().sum(-1),
            num_rejected=num_rejected.detach(),
            num_dropped=num_dropped.detach(),
        )


Record = TypeVar("Record", bound=FrameObjects)


def stack_frames(frames: list[Record]) -> Record:
    """Per-frame records to one record of the video: every field gets a time dim after the
    batch dim, e.g. presence (B, T, K) and reconstruction (B, T, C, H, W)."""
    if not frames:
        raise ValueError("no frames to stack")
    time_dim = frames[0].presence.dim() - 1  # (..., B, K): the dim after B
    return type(frames[0])(
        **{
            f.name: torch.stack([getattr(r, f.name) for r in frames], time_dim)
            for f in dataclasses.fields(frames[0])
        }
    )
