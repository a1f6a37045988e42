"""Rendering (the paper's Algorithm 3): decode glimpses, place them, composite over a background.

Per object n with alpha a_n (pasted glimpse mask times presence) and depth d_n, the importance
w_n = a_n * sigmoid(-d_n) is normalised over objects (gamma_n); the foreground is
sum_n gamma_n * a_n * rgb_n, the foreground mask M = min(sum_n a_n, 1), and the frame is
foreground + (1 - M) * background.
"""

from __future__ import annotations

import torch

from pyro_scalor.model.geometry import apply_flat, paste
from pyro_scalor.validation import capturing


def decode_glimpses(decoder: torch.nn.Module, what: torch.Tensor) -> torch.Tensor:
    """z_what (..., K, Dw) to glimpses (..., K, C + 1, g, g): RGB then alpha."""
    return apply_flat(decoder, what)


def object_layers(
    glimpses: torch.Tensor, boxes: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Place glimpses (..., K, C + 1, g, g) at boxes; returns rgb (..., K, C, H, W), alpha."""
    layers = paste(glimpses, boxes, height, width)
    return layers[..., :-1, :, :], layers[..., -1:, :, :]


def composite(
    rgb: torch.Tensor,
    alpha: torch.Tensor,
    presence: torch.Tensor,
    depth: torch.Tensor,
    background: torch.Tensor,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Depth-weighted alpha compositing.

    Takes rgb (..., K, C, H, W), alpha (..., K, 1, H, W), presence (..., K), depth (..., K, 1)
    and background (..., C, H, W); returns ``(frame, foreground, mask)`` with mask (..., 1, H, W).
    """
    a = alpha * presence[..., None, None, None]
    w = a * torch.sigmoid(-depth)[..., None, None]
    gamma = w / (w.sum(-4, keepdim=True) + eps)
    foreground = (gamma * a * rgb).sum(-4)
    mask = a.sum(-4).clamp(max=1.0)
    return foreground + (1 - mask) * background, foreground, mask


class MaskMemo:
    """The last few no-gradient mask renders, so the model can reuse the guide's.

    The model and the guide both render the propagated objects' mask (for the rejection rule).
    When the model is run on the guide's samples (``poutine.replay``), its z_what tensors are the
    guide's own tensor objects; an entry is reused only if z_what is that very object, the boxes
    and presences are equal, and the decoder's parameters have not changed since. Otherwise the
    mask is rendered again, so results never depend on the memo.
    """

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._entries: list[tuple] = []

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    def get(self, what, boxes, presence, version) -> torch.Tensor | None:
        """The stored mask for these inputs, or None (always None while a CUDA graph is being
        captured: comparing tensors would synchronise with the host)."""
        if capturing():
            return None
        for e_what, e_boxes, e_pres, e_version, mask in self._entries:
            if (
                e_what is what
                and e_version == version
                and torch.equal(e_boxes, boxes)
                and torch.equal(e_pres, presence)
            ):
                return mask
        return None

    def put(self, what, boxes, presence, version, mask) -> None:
        """Store a mask rendered from these inputs (not while a CUDA graph is being captured)."""
        if capturing():
            return
        self._entries.append((what, boxes.detach(), presence.detach(), version, mask))
        excess = len(self._entries) - self.capacity
        if excess > 0:
            del self._entries[:excess]


def presence_mask(
    decoder: torch.nn.Module,
    what: torch.Tensor,
    boxes: torch.Tensor,
    presence: torch.Tensor,
    height: int,
    width: int,
    memo: MaskMemo | None = None,
) -> torch.Tensor:
    """The objects' summed alpha, clamped to 1, (..., 1, H, W); computed without gradients."""
    version = tuple(p._version for p in decoder.parameters()) if memo is not None else None
    if memo is not None:
        hit = memo.get(what, boxes, presence, version)
        if hit is not None:
            return hit
    with torch.no_grad():
        alpha = decode_glimpses(decoder, what)[..., -1:, :, :]
        pasted = paste(alpha, boxes, height, width)
        mask = (pasted * presence[..., None, None, None]).sum(-4).clamp(max=1.0)
    if memo is not None:
        memo.put(what, boxes, presence, version, mask)
    return mask


def glimpse_alpha(
    decoder: torch.nn.Module, what: torch.Tensor, memo: MaskMemo | None = None
) -> torch.Tensor:
    """The decoded alpha glimpses (..., N, 1, g, g) of z_what (..., N, Dw), without gradients.

    ``memo`` (keyed on the z_what tensor object, as in :class:`MaskMemo`) lets the model reuse
    the guide's decode of the very same samples.
    """
    version = tuple(p._version for p in decoder.parameters()) if memo is not None else None
    none = what.new_zeros(0)
    if memo is not None:
        hit = memo.get(what, none, none, version)
        if hit is not None:
            return hit
    with torch.no_grad():
        alpha = decode_glimpses(decoder, what)[..., -1:, :, :]
    if memo is not None:
        memo.put(what, none, none, version, alpha)
    return alpha
