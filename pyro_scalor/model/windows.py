"""Windowed placement: paste each glimpse into a small fixed-size window around its box and
add the windows into the frame, so rendering K objects costs K windows, not K whole frames.

:func:`pyro_scalor.model.geometry.paste` samples every object over the whole H x W frame, most of
it zeros: at K = 128 slots on 64 x 64 frames that full-frame work (the paste, its backward, the
compositing products and sums) was about 40% of a CPU training step. An object's box is at most
``max_scale`` of the frame side (:class:`~pyro_scalor.model.geometry.BoxCoder` bounds it), and a
bilinear glimpse of g pixels is non-zero only within ``s * (1 + 1/g)`` of its centre, so a square
window of :func:`window_size` pixels centred on the box holds all of it. Windows start at whole
pixels (the start is computed without gradient; the sampling grid inside carries it, exactly as
in the full paste), sit in a frame padded by one window on every side so that objects leaving
the view need no special case, and are added with ``scatter_add`` and read back with
``gather``: fixed shapes, no host synchronisation, nothing that a CUDA graph cannot capture.
The result equals the full paste up to the order of floating-point sums (tests/model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def window_size(max_scale: float, glimpse_size: int, size: int) -> int:
    """Side in pixels of a window that holds a glimpse of ``glimpse_size`` pixels pasted at any
    box with scale at most ``max_scale`` on a frame side of ``size`` pixels: the support's
    half-width ``max_scale * (1 + 1/g) * size / 2`` rounded up, doubled, plus one pixel each side
    for the whole-pixel start."""
    half = max_scale * (1 + 1 / glimpse_size) * size / 2
    return 2 * math.ceil(half) + 2


@dataclass
class Windows:
    """Where N windows of ``p`` x ``p`` pixels lie in M frames of ``height`` x ``width``.

    ``index`` (M, N*p*p) are the flat positions of every window pixel in a frame padded by ``p``
    pixels on each side; ``u`` (M*N, p) and ``v`` (M*N, p) the x and y coordinates (in [-1, 1]
    frame units) of the window's pixel columns and rows.
    """

    index: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    p: int
    height: int
    width: int

    @classmethod
    def at(cls, boxes: torch.Tensor, p: int, height: int, width: int) -> Windows:
        """Windows centred on ``boxes`` (M, N, 4) as (sx, sy, cx, cy)."""
        with torch.no_grad():
            m, n = boxes.shape[:2]
            steps = torch.arange(p, device=boxes.device)

            def start(centre: torch.Tensor, side: int) -> torch.Tensor:
                # first pixel: the box centre (in pixels) minus half a window, to a whole pixel;
                # clamped so the window stays in the padded frame (a box that far out of the
                # view draws nothing into it anyway)
                pixel = (centre + 1) * (side / 2)
                return torch.floor(pixel - p / 2 + 0.5).clamp(-p, side).long()

            x0, y0 = start(boxes[..., 2], width), start(boxes[..., 3], height)  # (M, N)
            cols = x0.unsqueeze(-1) + steps  # (M, N, p)
            rows = y0.unsqueeze(-1) + steps
            padded_width = width + 2 * p
            index = (rows + p).unsqueeze(-1) * padded_width + (cols + p).unsqueeze(-2)
            u = (2 * cols.reshape(m * n, p).to(boxes.dtype) + 1) / width - 1
            v = (2 * rows.reshape(m * n, p).to(boxes.dtype) + 1) / height - 1
        return cls(index.reshape(m, n * p * p), u, v, p, height, width)

    def paste(self, glimpses: torch.Tensor, boxes: torch.Tensor, eps: float = 1e-4):
        """Glimpses (M, N, C, g, g) at ``boxes`` (M, N, 4) sampled into their windows:
        (M, N, C, p, p); the same grid as :func:`pyro_scalor.model.geometry.paste`."""
        m, n, c = glimpses.shape[:3]
        box = boxes.reshape(-1, 4)
        inv = 1 / box[:, :2].clamp(min=eps)
        offset = -box[:, 2:] * inv
        gx = offset[:, :1] + inv[:, :1] * self.u  # (M*N, p)
        gy = offset[:, 1:] + inv[:, 1:] * self.v
        p = self.p
        grid = torch.stack(
            [gx[:, None, :].expand(m * n, p, p), gy[:, :, None].expand(m * n, p, p)], -1
        )
        g = glimpses.reshape((m * n,) + glimpses.shape[2:])
        out = F.grid_sample(g, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out.view(m, n, c, p, p)

    def add(self, values: torch.Tensor) -> torch.Tensor:
        """Sum windows (M, N, C, p, p) into frames (M, C, H+2p, W+2p) (padded)."""
        m, n, c, p = values.shape[0], values.shape[1], values.shape[2], self.p
        flat = values.permute(0, 2, 1, 3, 4).reshape(m, c, n * p * p)
        size = (self.height + 2 * p) * (self.width + 2 * p)
        out = values.new_zeros(m, c, size)
        out = out.scatter_add(-1, self.index.unsqueeze(1).expand(m, c, n * p * p), flat)
        return out.view(m, c, self.height + 2 * p, self.width + 2 * p)

    def read(self, padded: torch.Tensor, n: int) -> torch.Tensor:
        """The windows (M, N, C, p, p) of padded frames (M, C, H+2p, W+2p)."""
        m, c, p = padded.shape[0], padded.shape[1], self.p
        flat = padded.reshape(m, c, -1)
        out = flat.gather(-1, self.index.unsqueeze(1).expand(m, c, n * p * p))
        return out.view(m, c, n, p, p).permute(0, 2, 1, 3, 4)

    def crop(self, padded: torch.Tensor) -> torch.Tensor:
        """The frame (M, C, H, W) inside padded frames (M, C, H+2p, W+2p)."""
        p = self.p
        return padded[..., p : p + self.height, p : p + self.width]
