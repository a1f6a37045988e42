"""Fixed-capacity object slots: the state carried from frame to frame, and the top-K merge.

A :class:`Slots` holds K objects per sequence with leading dims ``(..., B)`` (a particle dim may
lead). Absent slots have presence 0 and id 0. After each frame the propagated slots and the
accepted discoveries are merged by keeping the K most present candidates with ``gather``; shapes
never change and nothing loops over the batch or the objects.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Slots:
    """Objects of one frame: each field has leading dims (..., B, K).

    pres (..., K) presence in [0, 1]; box (..., K, 4) as (sx, sy, cx, cy); logit (..., K, 2)
    scale logits; what (..., K, Dw); depth (..., K, 1); h (..., K, Hd) tracker state (the
    model's or the guide's); ids (..., K) int64 track ids (0 = none); discovered (..., K) bool.
    """

    pres: torch.Tensor
    box: torch.Tensor
    logit: torch.Tensor
    what: torch.Tensor
    depth: torch.Tensor
    h: torch.Tensor
    ids: torch.Tensor
    discovered: torch.Tensor

    @classmethod
    def empty(cls, lead: tuple[int, ...], k: int, what_dim: int, hidden: int, device=None):
        """K absent slots with leading shape ``lead``."""
        z = torch.zeros
        return cls(
            pres=z(lead + (k,), device=device),
            box=z(lead + (k, 4), device=device),
            logit=z(lead + (k, 2), device=device),
            what=z(lead + (k, what_dim), device=device),
            depth=z(lead + (k, 1), device=device),
            h=z(lead + (k, hidden), device=device),
            ids=torch.zeros(lead + (k,), dtype=torch.long, device=device),
            discovered=torch.zeros(lead + (k,), dtype=torch.bool, device=device),
        )

    def inputs(self) -> torch.Tensor:
        """Previous latents fed to the trackers: (..., K, Dw + 5) = [what, logit, centre, depth]."""
        return torch.cat([self.what, self.logit, self.box[..., 2:], self.depth], -1)

    @classmethod
    def proposals(
        cls,
        t: int,
        pres: torch.Tensor,
        box: torch.Tensor,
        logit: torch.Tensor,
        what: torch.Tensor,
        depth: torch.Tensor,
        hidden: int,
    ) -> Slots:
        """The G*G discovery candidates of frame t as slots (..., B, G*G).

        Takes their presence (..., B, G*G) (after rejection), boxes (..., 4), scale logits
        (..., 2), what (..., Dw) and depth (..., 1); the tracker state starts at zero and cell
        i gets the track id ``1 + t * G*G + i``, unique over the video.
        """
        hw = pres.shape[-1]
        ids = torch.arange(hw, device=pres.device) + 1 + t * hw
        lead = pres.shape
        return cls(
            pres=pres,
            box=box,
            logit=logit,
            what=what,
            depth=depth,
            h=torch.zeros(lead + (hidden,), device=pres.device),
            ids=ids.expand(lead),
            discovered=torch.ones(lead, dtype=torch.bool, device=pres.device),
        )


def merge(prop: Slots, disc: Slots, k: int) -> Slots:
    """Keep the ``k`` most present of propagated and discovered candidates, sorted by presence."""
    lead = torch.broadcast_shapes(prop.pres.shape[:-1], disc.pres.shape[:-1])
    out = {}
    idx = None
    for f in fields(Slots):
        a, b = getattr(prop, f.name), getattr(disc, f.name)
        extra = a.shape[len(prop.pres.shape) :]
        a = a.expand(lead + a.shape[-1 - len(extra) :])
        b = b.expand(lead + b.shape[-1 - len(extra) :])
        cat = torch.cat([a, b], len(lead))
        if f.name == "pres":
            idx = torch.topk(cat.detach(), k, dim=-1).indices
        out[f.name] = cat
    assert idx is not None
    result = {}
    for name, value in out.items():
        extra = value.dim() - idx.dim()
        index = idx.view(idx.shape + (1,) * extra).expand(idx.shape + value.shape[idx.dim() :])
        result[name] = torch.gather(value, len(lead), index)
    return Slots(**result)
