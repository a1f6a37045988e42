"""Fast numpy rasterisation of tracked boxes onto upscaled frames (for GIFs, TensorBoard)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pyro_scalor.metrics.boxes import check_flags, check_tracks
from pyro_scalor.viz.colors import DISCOVERED_COLOR, colors_for_ids
from pyro_scalor.viz.frames import as_uint8_frames

__all__ = ["render_boxes_on_frames", "box_pixel_bounds", "discovered_marker"]


def box_pixel_bounds(box: np.ndarray, scale: int) -> tuple[int, int, int, int]:
    """Inclusive pixel rows/cols ``(x0, y0, x1, y1)`` of a box's outline after upscaling.

    The outline lies on the outermost pixels covered by the box (max exclusive); a box
    thinner than one pixel still gets a one-pixel outline. Values may lie outside the image.
    """
    x0 = math.floor(box[0] * scale)
    y0 = math.floor(box[1] * scale)
    x1 = max(math.ceil(box[2] * scale) - 1, x0)
    y1 = max(math.ceil(box[3] * scale) - 1, y0)
    return x0, y0, x1, y1


def discovered_marker(scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks ``(disc, ring)``, each bool ``(k, k)``, of the marker of a discovered box.

    The marker is a white disc with a black ring (visible on dark and light pixels),
    centred on the box's top-left outline corner; ``k = 2 * r + 1`` with ``r`` about
    ``scale / 2 + 2``.
    """
    r = max(2, scale // 2 + 2)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    dist2 = yy**2 + xx**2
    disc = dist2 <= r * r + r  # slightly rounder than dist <= r on a small grid
    ring = disc & (dist2 > (r - 1) * (r - 1) + (r - 1))
    return disc, ring


def _draw_outline(image: np.ndarray, x0: int, y0: int, x1: int, y1: int, color: np.ndarray) -> None:
    """Draw the inclusive rectangle outline (x0, y0)-(x1, y1) on ``image``, clipped."""
    out_h, out_w = image.shape[:2]
    cx0, cx1 = max(x0, 0), min(x1, out_w - 1)
    cy0, cy1 = max(y0, 0), min(y1, out_h - 1)
    if cx0 > cx1 or cy0 > cy1:
        return  # entirely outside the frame
    if 0 <= y0 < out_h:
        image[y0, cx0 : cx1 + 1] = color
    if 0 <= y1 < out_h:
        image[y1, cx0 : cx1 + 1] = color
    if 0 <= x0 < out_w:
        image[cy0 : cy1 + 1, x0] = color
    if 0 <= x1 < out_w:
        image[cy0 : cy1 + 1, x1] = color


def _stamp(image: np.ndarray, mask: np.ndarray, top: int, left: int, color: np.ndarray) -> None:
    """Set the pixels of ``mask`` placed with its top-left at (top, left) to ``color``."""
    out_h, out_w = image.shape[:2]
    k_h, k_w = mask.shape
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + k_h, out_h), min(left + k_w, out_w)
    if r0 >= r1 or c0 >= c1:
        return
    sub = mask[r0 - top : r1 - top, c0 - left : c1 - left]
    image[r0:r1, c0:c1][sub] = color


def render_boxes_on_frames(
    frames: Any,
    boxes: Any,
    ids: Any,
    valid: Any,
    discovered: Any = None,
    scale: int = 4,
    *,
    thickness: int = 1,
) -> np.ndarray:
    """Upscale frames by ``scale`` (nearest) and draw 1-px box outlines in each id's colour.

    Takes frames ``(T, H, W, 3)`` (float [0, 1], uint8 or torch ``(T, 3, H, W)``), boxes
    ``(T, N, 4)`` in pixels of the original frames, ids ``(T, N)`` or ``(N,)``, valid
    ``(T, N)`` and optional discovered ``(T, N)`` bool; a discovered box also gets a white
    disc with a black ring on its top-left corner (moved into the frame if need be).
    ``thickness`` > 1 thickens outlines inwards. Returns uint8 ``(T, H*scale, W*scale, 3)``.
    """
    if isinstance(scale, bool) or not isinstance(scale, int | np.integer) or scale < 1:
        raise ValueError(f"scale must be a positive integer; got {scale!r}")
    scale = int(scale)
    if isinstance(thickness, bool) or not isinstance(thickness, int | np.integer) or thickness < 1:
        raise ValueError(f"thickness must be a positive integer; got {thickness!r}")
    images = as_uint8_frames(frames, "frames")
    boxes, ids, valid = check_tracks(boxes, ids, valid, name="", batched=False)
    n_frames, height, width = images.shape[:3]
    if boxes.shape[0] != n_frames:
        raise ValueError(
            f"boxes cover {boxes.shape[0]} frames (shape {boxes.shape}) but frames has "
            f"{n_frames} (shape {images.shape}); expected boxes of shape (T, N, 4) with T = "
            f"{n_frames}"
        )
    if discovered is not None:
        discovered = check_flags(discovered, "discovered", valid.shape, ("T", "N"))

    out = np.repeat(np.repeat(images, scale, axis=1), scale, axis=2)
    out_h, out_w = height * scale, width * scale
    colors = np.round(colors_for_ids(ids) * 255.0).astype(np.uint8)
    disc, ring = discovered_marker(scale)
    radius = disc.shape[0] // 2
    white = np.round(np.asarray(DISCOVERED_COLOR) * 255.0).astype(np.uint8)
    black = np.zeros(3, dtype=np.uint8)

    for t in range(n_frames):
        image = out[t]
        markers: list[tuple[int, int]] = []
        for n in np.flatnonzero(valid[t]):
            x0, y0, x1, y1 = box_pixel_bounds(boxes[t, n], scale)
            for i in range(min(int(thickness), (x1 - x0) // 2 + 1, (y1 - y0) // 2 + 1)):
                _draw_outline(image, x0 + i, y0 + i, x1 - i, y1 - i, colors[t, n])
            if discovered is not None and discovered[t, n]:
                # on the top-left corner, moved into the frame for boxes partly outside
                markers.append((min(max(x0, 0), out_w - 1), min(max(y0, 0), out_h - 1)))
        # markers go on top of every outline of the frame so that none hides them
        for x0, y0 in markers:
            _stamp(image, disc, y0 - radius, x0 - radius, white)
            _stamp(image, ring, y0 - radius, x0 - radius, black)
    return out
