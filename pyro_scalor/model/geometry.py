"""Boxes, the spatial transformer (crop glimpses out of images, paste glimpses into images), and
:func:`apply_flat`, which runs a network written for one flat batch on latents with any leading
dims.

Coordinates follow ``torch.nn.functional.affine_grid`` with ``align_corners=False``: the image
spans [-1, 1] on both axes. An object's box is ``(sx, sy, cx, cy)``: ``s`` is the box side as a
fraction of the image side (so the box spans ``[c - s, c + s]``) and ``c`` its centre. All
functions broadcast over any number of leading dims: boxes are ``(..., N, 4)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def apply_flat(fn, *xs: torch.Tensor, keep: int = 1):
    """Apply ``fn`` to inputs flattened over their leading dims, and restore those dims.

    Each input (..., *S) keeps its last ``keep`` dims S; the leading dims of all inputs
    broadcast to one shape L and are flattened into one batch dim, so ``fn`` sees (N, *S) with
    N = prod(L). Every tensor ``fn`` returns, (N, *R), comes back as (*L, *R), also inside
    tuples, named tuples and dicts. This is how the networks (written for one flat batch) run
    on (particles, batch, objects) shaped latents.
    """
    lead = torch.broadcast_shapes(*(x.shape[: x.dim() - keep] for x in xs))
    flat = [
        x.expand(lead + x.shape[x.dim() - keep :]).reshape((-1,) + x.shape[x.dim() - keep :])
        for x in xs
    ]
    return _restore(fn(*flat), lead)


def _restore(out, lead: torch.Size):
    """``out`` (a tensor (N, *R), or tuples / named tuples / dicts of them) with N as ``lead``."""
    if torch.is_tensor(out):
        return out.reshape(lead + out.shape[1:])
    if isinstance(out, dict):
        return {k: _restore(v, lead) for k, v in out.items()}
    parts = [_restore(o, lead) for o in out]
    return type(out)(*parts) if hasattr(out, "_fields") else type(out)(parts)


def mask_boxes(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tight pixel boxes of boolean masks (..., H, W).

    Returns ``(boxes (..., 4) as (x_min, y_min, x_max, y_max) with max exclusive, areas (...))``;
    an empty mask gives a zero box and area 0.
    """
    h, w = mask.shape[-2:]
    cols, rows = mask.any(-2), mask.any(-1)
    area = mask.sum((-1, -2)).to(torch.float32)

    def first(v: torch.Tensor) -> torch.Tensor:
        return v.float().argmax(-1).to(torch.float32)

    x0, x1 = first(cols), w - first(cols.flip(-1))
    y0, y1 = first(rows), h - first(rows.flip(-1))
    boxes = torch.stack([x0, y0, x1, y1], -1) * (area > 0).unsqueeze(-1)
    return boxes, area


def _axis(n: int, like: torch.Tensor) -> torch.Tensor:
    """Pixel-centre coordinates in [-1, 1] of an axis of ``n`` pixels (align_corners=False)."""
    return (2 * torch.arange(n, device=like.device, dtype=like.dtype) + 1) / n - 1


def _grid(scale: torch.Tensor, offset: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Sampling grid (N, height, width, 2) with x = offset_x + scale_x * u for axis coords u.

    Axis-aligned boxes make the grid separable: built by broadcasting, not a batched matmul.
    """
    gx = offset[:, :1] + scale[:, :1] * _axis(width, scale)  # (N, W)
    gy = offset[:, 1:] + scale[:, 1:] * _axis(height, scale)  # (N, H)
    n = scale.shape[0]
    return torch.stack(
        [gx[:, None, :].expand(n, height, width), gy[:, :, None].expand(n, height, width)], -1
    )


def crop(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear glimpses of ``images`` (..., C, H, W) at ``boxes`` (..., N, 4).

    Leading dims of images and boxes broadcast; returns (..., N, C, size, size).
    """
    lead = torch.broadcast_shapes(images.shape[:-3], boxes.shape[:-2])
    n = boxes.shape[-2]
    c = images.shape[-3]
    img = images.expand(lead + images.shape[-3:]).reshape((-1,) + images.shape[-3:])
    box = boxes.expand(lead + boxes.shape[-2:]).reshape(-1, 4)
    m = img.shape[0]
    grid = _grid(box[:, :2], box[:, 2:], size, size)
    # sample each image with its own N grids at once: (M, C, N*size, size)
    grid = grid.view(m, n * size, size, 2)
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = out.view(m, c, n, size, size).transpose(1, 2)
    return out.reshape(lead + (n, c, size, size))


def paste(
    glimpses: torch.Tensor, boxes: torch.Tensor, height: int, width: int, eps: float = 1e-4
) -> torch.Tensor:
    """Place glimpses (..., N, C, g, g) into empty images at ``boxes`` (..., N, 4).

    Returns (..., N, C, height, width), zero outside each box (inverse spatial transformer).
    """
    lead = glimpses.shape[:-3]
    g = glimpses.reshape((-1,) + glimpses.shape[-3:])
    box = boxes.expand(lead + (4,)).reshape(-1, 4)
    inv = 1 / box[:, :2].clamp(min=eps)
    grid = _grid(inv, -box[:, 2:] * inv, height, width)
    out = F.grid_sample(g, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.view(lead + (g.shape[1], height, width))


def boxes_to_pixels(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Convert boxes (..., 4) ``(sx, sy, cx, cy)`` to pixel ``(x_min, y_min, x_max, y_max)``."""
    sx, sy, cx, cy = boxes.unbind(-1)
    x0 = (cx - sx + 1) * (width / 2)
    x1 = (cx + sx + 1) * (width / 2)
    y0 = (cy - sy + 1) * (height / 2)
    y1 = (cy + sy + 1) * (height / 2)
    return torch.stack([x0, y0, x1, y1], -1)


def pixels_to_boxes(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`boxes_to_pixels`: pixel boxes (..., 4) to ``(sx, sy, cx, cy)``."""
    x0, y0, x1, y1 = pixels.unbind(-1)
    sx = (x1 - x0) / width
    sy = (y1 - y0) / height
    cx = (x0 + x1) / width - 1
    cy = (y0 + y1) / height - 1
    return torch.stack([sx, sy, cx, cy], -1)


def grid_centres(grid_size: int, device=None, dtype=None) -> torch.Tensor:
    """Centres (G*G, 2) as ``(cx, cy)`` of a G x G grid of cells, row-major over (y, x)."""
    step = 2.0 / grid_size
    c = -1 + step * (torch.arange(grid_size, device=device, dtype=dtype) + 0.5)
    cy, cx = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([cx.reshape(-1), cy.reshape(-1)], -1)


class BoxCoder:
    """Maps unconstrained where-latents to boxes, for discovery and for propagation.

    Discovery: ``z = (a_sx, a_sy, a_cx, a_cy)``; ``s = s_min + (s_max - s_min) sigmoid(a_s)`` and
    ``c = cell centre + max_shift * cell width * tanh(a_c)``. Propagation: ``z`` is a change of the
    previous box: the scale moves by ``scale_step * tanh(z_s)`` in logit space and the centre by
    ``max_motion * tanh(z_c)`` (clamped to [-1.5, 1.5], so objects can leave the view).
    """

    def __init__(
        self,
        grid_size: int,
        min_scale: float,
        max_scale: float,
        max_shift_cells: float = 1.0,
        max_motion: float = 0.2,
        scale_step: float = 0.5,
    ) -> None:
        if not 0 < min_scale < max_scale <= 2:
            raise ValueError(f"need 0 < min_scale < max_scale <= 2, got {min_scale}, {max_scale}")
        self.grid_size = grid_size
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.max_shift_cells = max_shift_cells
        self.max_motion = max_motion
        self.scale_step = scale_step

    def _scale(self, logit: torch.Tensor) -> torch.Tensor:
        return self.min_scale + (self.max_scale - self.min_scale) * torch.sigmoid(logit)

    def discovery(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents (..., G*G, 4) to ``(boxes (..., G*G, 4), scale_logits (..., G*G, 2))``."""
        centres = grid_centres(self.grid_size, z.device, z.dtype)
        cell = 2.0 / self.grid_size
        logit = z[..., :2]
        c = centres + self.max_shift_cells * cell * torch.tanh(z[..., 2:])
        return torch.cat([self._scale(logit), c], -1), logit

    def propagation(
        self, z: torch.Tensor, prev_box: torch.Tensor, prev_logit: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Change latents (..., K, 4) applied to previous boxes; returns new boxes and logits."""
        logit = prev_logit + self.scale_step * torch.tanh(z[..., :2])
        c = (prev_box[..., 2:] + self.max_motion * torch.tanh(z[..., 2:])).clamp(-1.5, 1.5)
        return torch.cat([self._scale(logit), c], -1), logit
