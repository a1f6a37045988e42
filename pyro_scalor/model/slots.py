"""Fixed-capacity object slots: the state carried from frame to frame, and their merge.

A :class:`Slots` holds K objects per sequence with leading dims ``(..., B)`` (a particle dim may
lead). Absent slots have presence 0 and id 0. After each frame the propagated slots and the
accepted discoveries are merged into the K slots (:func:`merge`) with sorts and ``gather``; shapes
never change and nothing loops over the batch or the objects.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Slots:
    """Objects of one frame: each field has leading dims (..., B, K).

    pres (..., K) presence in [0, 1]; box (..., K, 4) as (sx, sy, cx, cy); logit (..., K, 2)
    scale logits; motion (..., K, 4) the where-change latent the 'velocity' transition prior
    centres the object's next change on (:func:`pyro_scalor.model.priors.carry_motion`; zeros
    in an empty slot and for an object discovered at this frame); history (..., K, W, 4) the
    object's last W changes (where latents, or its drawn centre's moves), oldest first, and moves
    (..., K) how many of them are real (at most W; zero for an empty slot and a new object);
    drawn (..., K, 8) where the object was last drawn: its extent ``(x_min, y_min, x_max,
    y_max)`` and its alpha's centroid ``(x, y)`` in image coordinates, not clipped to the view,
    and its box's centre then (kept with the 'drawn' motion estimate); what (..., K, Dw); depth
    (..., K, 1); h (..., K, Hd) tracker state (the model's or the guide's); ids (..., K) int64
    track ids (0 = none); discovered (..., K) bool.
    """

    pres: torch.Tensor
    box: torch.Tensor
    logit: torch.Tensor
    motion: torch.Tensor
    history: torch.Tensor
    moves: torch.Tensor
    drawn: torch.Tensor
    what: torch.Tensor
    depth: torch.Tensor
    h: torch.Tensor
    ids: torch.Tensor
    discovered: torch.Tensor

    @classmethod
    def empty(
        cls,
        lead: tuple[int, ...],
        k: int,
        what_dim: int,
        hidden: int,
        device=None,
        window: int = 1,
    ):
        """K absent slots with leading shape ``lead`` and a motion history of ``window``."""
        z = torch.zeros
        return cls(
            pres=z(lead + (k,), device=device),
            box=z(lead + (k, 4), device=device),
            logit=z(lead + (k, 2), device=device),
            motion=z(lead + (k, 4), device=device),
            history=z(lead + (k, window, 4), device=device),
            moves=z(lead + (k,), device=device),
            drawn=z(lead + (k, 8), device=device),
            what=z(lead + (k, what_dim), device=device),
            depth=z(lead + (k, 1), device=device),
            h=z(lead + (k, hidden), device=device),
            ids=torch.zeros(lead + (k,), dtype=torch.long, device=device),
            discovered=torch.zeros(lead + (k,), dtype=torch.bool, device=device),
        )

    def inputs(self) -> torch.Tensor:
        """Previous latents fed to the trackers: (..., K, Dw + 5) = [what, logit, centre, depth].

        ``motion`` is not among them: the trackers' parameters do not depend on the transition
        prior."""
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
        window: int = 1,
    ) -> Slots:
        """The G*G discovery candidates of frame t as slots (..., B, G*G).

        Takes their presence (..., B, G*G) (after rejection), boxes (..., 4), scale logits
        (..., 2), what (..., Dw) and depth (..., 1); the tracker state, the motion and its
        ``window`` changes of history start at zero and cell i gets the track id
        ``1 + t * G*G + i``, unique over the video.
        """
        hw = pres.shape[-1]
        ids = torch.arange(hw, device=pres.device) + 1 + t * hw
        lead = pres.shape
        return cls(
            pres=pres,
            box=box,
            logit=logit,
            motion=torch.zeros_like(box),
            history=box.new_zeros(box.shape[:-1] + (window, 4)),
            moves=torch.zeros(lead, device=pres.device),
            drawn=torch.cat(
                [box[..., 2:] - box[..., :2], box[..., 2:] + box[..., :2]] + [box[..., 2:]] * 2,
                -1,
            ),
            what=what,
            depth=depth,
            h=torch.zeros(lead + (hidden,), device=pres.device),
            ids=ids.expand(lead),
            discovered=torch.ones(lead, dtype=torch.bool, device=pres.device),
        )


def _broadcast(prop: Slots, disc: Slots) -> tuple[torch.Size, dict, dict]:
    """The common leading shape (..., B) of two slot sets and their fields expanded to it."""
    lead = torch.broadcast_shapes(prop.pres.shape[:-1], disc.pres.shape[:-1])
    a_out, b_out = {}, {}
    for f in fields(Slots):
        a, b = getattr(prop, f.name), getattr(disc, f.name)
        extra = a.dim() - prop.pres.dim()
        a_out[f.name] = a.expand(lead + a.shape[-1 - extra :])
        b_out[f.name] = b.expand(lead + b.shape[-1 - extra :])
    return lead, a_out, b_out


def _gather(value: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``value`` (..., N, *E) gathered along its object dim at ``idx`` (..., M) to (..., M, *E)."""
    extra = value.dim() - idx.dim()
    index = idx.view(idx.shape + (1,) * extra).expand(idx.shape + value.shape[idx.dim() :])
    return torch.gather(value, idx.dim() - 1, index)


def merge(prop: Slots, disc: Slots, k: int, mode: str = "tracks") -> tuple[Slots, torch.Tensor]:
    """Merge the propagated slots (..., B, K) and the proposals (..., B, N) into K slots.

    ``mode`` 'tracks' (:func:`merge_tracks`): propagated objects keep their slots and proposals
    fill the free ones. 'topk' (:func:`merge_topk`): the ``k`` most present candidates. Returns
    ``(slots, dropped (..., B))``: the present proposals (presence > 0.5) left out for lack of
    a slot.
    """
    slots, dropped, _ = merge_with_index(prop, disc, k, mode)
    return slots, dropped


def merge_with_index(
    prop: Slots, disc: Slots, k: int, mode: str = "tracks"
) -> tuple[Slots, torch.Tensor, torch.Tensor]:
    """:func:`merge`, also returning the :func:`merge_index` ``index`` it gathered with."""
    lead, a, b = _broadcast(prop, disc)
    index, dropped = merge_index(a["pres"].detach(), b["pres"].detach(), k, mode)
    out = {name: _gather(torch.cat([a[name], b[name]], len(lead)), index) for name in a}
    return Slots(**out), dropped, index


def merge_index(
    prop_pres: torch.Tensor, disc_pres: torch.Tensor, k: int, mode: str = "tracks"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which candidates :func:`merge` keeps: ``(index (..., K'), dropped (..., B))``.

    Takes the presences of the K propagated slots (..., K) and the N proposals (..., N) (leading
    dims already broadcast); ``index`` points into the K + N candidates (propagated first), so
    any per-object tensor (say, decoded glimpses) follows the merge with :func:`take`. K' is K
    for 'tracks' and ``k`` for 'topk'.
    """
    if mode == "tracks":
        return _tracks_index(prop_pres, disc_pres)
    if mode == "topk":
        return _topk_index(prop_pres, disc_pres, k)
    raise ValueError(f"unknown merge mode {mode!r}; valid choices: tracks, topk")


def take(prop: torch.Tensor, disc: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Per-object values of the propagated (..., K, *E) and proposed (..., N, *E) candidates
    at a :func:`merge_index` ``index`` (..., K'): (..., K', *E)."""
    dim = index.dim() - 1
    lead = index.shape[:-1]
    a = prop.expand(lead + prop.shape[dim:])
    b = disc.expand(lead + disc.shape[dim:])
    return _gather(torch.cat([a, b], dim), index)


def merge_tracks(prop: Slots, disc: Slots) -> tuple[Slots, torch.Tensor]:
    """Propagated objects keep their K slots; proposals fill the free ones, most present first.

    A slot is free when its object is not present (presence <= 0.5); free slots are taken in
    order of rising presence, and the j-th most present proposal replaces the j-th free slot's
    object when it is more present than that object. A present object is therefore never
    replaced, and a present proposal is dropped only when no free slot is left. Sorting and
    ``gather`` on fixed shapes: no loop, no host synchronisation. Returns ``(slots, dropped)``.
    """
    return merge(prop, disc, prop.pres.shape[-1], "tracks")


def _tracks_index(slot_pres: torch.Tensor, disc_pres: torch.Tensor):
    k, n = slot_pres.shape[-1], disc_pres.shape[-1]
    lead = slot_pres.shape[:-1]
    m = min(k, n)
    slot_key = torch.where(slot_pres > 0.5, torch.full_like(slot_pres, 2.0), slot_pres)
    slot_idx = torch.sort(slot_key, dim=-1, stable=True).indices[..., :m]  # free slots first
    disc_idx = torch.sort(disc_pres, dim=-1, descending=True, stable=True).indices[..., :m]
    take_ = torch.gather(disc_pres, -1, disc_idx) > torch.gather(slot_key, -1, slot_idx)
    index = torch.arange(k, device=take_.device).expand(lead + (k,))
    index = index.scatter(-1, slot_idx, torch.where(take_, k + disc_idx, slot_idx))
    used = torch.zeros(lead + (n,), dtype=torch.bool, device=take_.device)
    used = used.scatter(-1, disc_idx, take_)
    dropped = ((disc_pres > 0.5) & ~used).sum(-1).to(disc_pres.dtype)
    return index, dropped


def merge_topk(prop: Slots, disc: Slots, k: int) -> tuple[Slots, torch.Tensor]:
    """Keep the ``k`` most present of propagated and discovered candidates, sorted by presence
    (a proposal may evict a propagated object). Returns ``(slots, dropped)``."""
    return merge(prop, disc, k, "topk")


def _topk_index(prop_pres: torch.Tensor, disc_pres: torch.Tensor, k: int):
    n_prop = prop_pres.shape[-1]
    idx = torch.topk(torch.cat([prop_pres, disc_pres], -1), k, dim=-1).indices
    kept = (idx >= n_prop) & (torch.gather(torch.cat([prop_pres, disc_pres], -1), -1, idx) > 0.5)
    dropped = (disc_pres > 0.5).sum(-1) - kept.sum(-1)
    return idx, dropped.to(disc_pres.dtype)
