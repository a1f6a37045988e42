"""Rendering (the paper's Algorithm 3): decode glimpses, place them, composite over a background.

Per object n with alpha a_n (pasted glimpse mask times presence) and depth d_n, the importance
w_n = a_n * sigmoid(-d_n) is normalised over objects (gamma_n); the foreground is
sum_n gamma_n * a_n * rgb_n, the foreground mask M = min(sum_n a_n, 1), and the frame is
foreground + (1 - M) * background.

:func:`composite` works on whole-frame layers (one H x W layer per object) and is the reference;
the model renders with :func:`render`, the same sums over a window around each box, so that the
rendering cost grows with the number of slots times a window, not times a frame.
"""

from __future__ import annotations

import torch

from pyro_scalor.model.geometry import apply_flat, paste
from pyro_scalor.model.windows import Windows, window_size
from pyro_scalor.validation import capturing


def decode_glimpses(
    decoder: torch.nn.Module,
    what: torch.Tensor,
    presence: torch.Tensor | None = None,
    floor: float = 0.0,
) -> torch.Tensor:
    """z_what (..., K, Dw) to glimpses (..., K, C + 1, g, g): RGB then alpha.

    With ``presence`` (..., K), the objects' presences, glimpses of objects with presence at or
    below ``floor`` are zeros instead of decoded on the CPU. A glimpse is multiplied by its
    object's presence wherever it is used, so with ``floor`` 0 (only presence exactly 0:
    a slot no object has claimed yet, a rejected proposal) rendering, masks and gradients are
    unchanged; with ``ModelConfig.presence_floor`` > 0 such objects are left out of the frame,
    a change of at most ``floor`` times their alpha per pixel. A step's decoding then grows with
    the objects present rather than the slots. Elsewhere (a GPU, where selecting rows would need
    a host sync and shapes that change, which CUDA graphs forbid) every slot is decoded.
    """
    if (
        presence is None
        or what.device.type != "cpu"
        or tuple(presence.shape) != tuple(what.shape[:-1])
    ):
        return apply_flat(decoder, what)
    flat = what.reshape(-1, what.shape[-1])
    live = (presence.reshape(-1) > floor).nonzero().squeeze(-1)
    if live.numel() == flat.shape[0]:
        return apply_flat(decoder, what)
    if live.numel() == 0:
        one = decoder(flat[:1])
        return one.new_zeros(what.shape[:-1] + one.shape[1:])
    decoded = decoder(flat.index_select(0, live))
    out = decoded.new_zeros((flat.shape[0],) + decoded.shape[1:]).index_copy(0, live, decoded)
    return out.view(what.shape[:-1] + decoded.shape[1:])


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


def render(
    glimpses: torch.Tensor,
    boxes: torch.Tensor,
    presence: torch.Tensor,
    depth: torch.Tensor,
    background: torch.Tensor,
    max_scale: float,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`composite` of glimpses (..., K, C + 1, g, g) pasted at ``boxes`` (..., K, 4), with
    each object's work done in a window around its box (:mod:`pyro_scalor.model.windows`).

    Boxes must have scales at most ``max_scale`` (the model's ``BoxCoder`` keeps them so).
    Returns ``(frame, foreground, mask)`` as :func:`composite` does: equal to it, up to the order
    of floating-point sums, at a cost that grows with K windows instead of K frames.
    """
    h, w = background.shape[-2:]
    lead = torch.broadcast_shapes(
        glimpses.shape[:-4], boxes.shape[:-2], presence.shape[:-1], background.shape[:-3]
    )
    k, c1 = glimpses.shape[-4], glimpses.shape[-3]

    def flat(x: torch.Tensor, keep: int) -> torch.Tensor:
        return x.expand(lead + x.shape[x.dim() - keep :]).reshape((-1,) + x.shape[x.dim() - keep :])

    g, box = flat(glimpses, 4), flat(boxes, 2)
    pres, dep, bg = flat(presence, 1), flat(depth, 2), flat(background, 3)
    windows = Windows.at(box, window_size(max_scale, g.shape[-1], max(h, w)), h, w)
    layers = windows.paste(g, box)  # (M, K, C + 1, p, p)
    rgb, alpha = layers[:, :, : c1 - 1], layers[:, :, c1 - 1 :]
    a = alpha * pres[..., None, None, None]
    weight = a * torch.sigmoid(-dep)[..., None, None]
    total = windows.read(windows.add(weight), k)
    gamma = weight / (total + eps)
    foreground = windows.crop(windows.add(gamma * a * rgb))
    mask = windows.crop(windows.add(a)).clamp(max=1.0)
    frame = foreground + (1 - mask) * bg
    shape = lead + frame.shape[1:]
    return frame.view(shape), foreground.view(shape), mask.view(lead + mask.shape[1:])


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
    max_scale: float | None = None,
    alpha: torch.Tensor | None = None,
    floor: float = 0.0,
) -> torch.Tensor:
    """The objects' summed alpha, clamped to 1, (..., 1, H, W); computed without gradients.

    With ``max_scale`` (the largest box scale) each object is pasted into a window around its
    box (:mod:`pyro_scalor.model.windows`) rather than a whole frame: the same mask, cheaper.
    ``alpha`` (..., K, 1, g, g), the objects' decoded alpha if already at hand (see
    :func:`glimpse_alpha`), saves decoding ``what`` again; ``floor`` as in
    :func:`decode_glimpses`."""
    version = tuple(p._version for p in decoder.parameters()) if memo is not None else None
    if memo is not None:
        hit = memo.get(what, boxes, presence, version)
        if hit is not None:
            return hit
    with torch.no_grad():
        if alpha is None:
            alpha = decode_glimpses(decoder, what, presence, floor)[..., -1:, :, :]
        if max_scale is None:
            pasted = paste(alpha, boxes, height, width)
            mask = (pasted * presence[..., None, None, None]).sum(-4).clamp(max=1.0)
        else:
            mask = _window_mask(alpha, boxes, presence, height, width, max_scale)
    if memo is not None:
        memo.put(what, boxes, presence, version, mask)
    return mask


def _window_mask(alpha, boxes, presence, height, width, max_scale) -> torch.Tensor:
    """Summed ``alpha`` (..., K, 1, g, g) at ``boxes`` times ``presence``, clamped to 1, through
    windows: (..., 1, H, W)."""
    lead = torch.broadcast_shapes(alpha.shape[:-4], boxes.shape[:-2], presence.shape[:-1])
    k = alpha.shape[-4]
    a = alpha.expand(lead + alpha.shape[-4:]).reshape((-1,) + alpha.shape[-4:])
    box = boxes.expand(lead + boxes.shape[-2:]).reshape(-1, k, 4)
    pres = presence.expand(lead + (k,)).reshape(-1, k)
    p = window_size(max_scale, a.shape[-1], max(height, width))
    windows = Windows.at(box, p, height, width)
    pasted = windows.paste(a, box) * pres[..., None, None, None]
    mask = windows.crop(windows.add(pasted)).clamp(max=1.0)
    return mask.reshape(lead + mask.shape[1:])


def glimpse_alpha(
    decoder: torch.nn.Module,
    what: torch.Tensor,
    memo: MaskMemo | None = None,
    presence: torch.Tensor | None = None,
    floor: float = 0.0,
) -> torch.Tensor:
    """The decoded alpha glimpses (..., N, 1, g, g) of z_what (..., N, Dw), without gradients.

    ``memo`` (keyed on the z_what tensor object, as in :class:`MaskMemo`) lets the model reuse
    the guide's decode of the very same samples. ``presence`` (..., N) and ``floor``: objects
    with presence at or below ``floor`` get zeros on the CPU (see :func:`decode_glimpses`).
    """
    version = tuple(p._version for p in decoder.parameters()) if memo is not None else None
    none = what.new_zeros(0)
    key = none if presence is None else presence
    if memo is not None:
        hit = memo.get(what, none, key, version)
        if hit is not None:
            return hit
    with torch.no_grad():
        alpha = decode_glimpses(decoder, what, presence, floor)[..., -1:, :, :]
    if memo is not None:
        memo.put(what, none, key, version, alpha)
    return alpha
