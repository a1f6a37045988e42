"""Stable, distinct colours for track ids."""

from __future__ import annotations

import colorsys
from functools import lru_cache
from numbers import Integral

import numpy as np

__all__ = ["color_for_id", "colors_for_ids", "GREY", "DISCOVERED_COLOR"]

GREY: tuple[float, float, float] = (0.6, 0.6, 0.6)
"""Colour of ids <= 0 (no identity / background)."""

DISCOVERED_COLOR: tuple[float, float, float] = (1.0, 1.0, 1.0)
"""Colour of the marker drawn on newly discovered objects (white, as in the SCALOR paper)."""

# 20 hand-picked (hue in degrees, saturation, value): consecutive ids get far-apart hues and
# the brightness alternates, so neighbours stay distinct on black and on white frames. No
# greys and no near-white, which are reserved for id <= 0 and for the discovery marker.
_PALETTE_HSV = (
    (0, 0.85, 1.00),
    (120, 0.75, 0.90),
    (210, 0.80, 1.00),
    (55, 0.85, 1.00),
    (300, 0.70, 1.00),
    (180, 0.80, 0.90),
    (30, 0.90, 1.00),
    (265, 0.60, 1.00),
    (90, 0.80, 0.95),
    (340, 0.50, 1.00),
    (160, 0.70, 0.75),
    (15, 0.55, 0.80),
    (240, 0.55, 1.00),
    (45, 0.60, 0.75),
    (195, 0.45, 1.00),
    (320, 0.85, 0.75),
    (140, 0.45, 1.00),
    (0, 0.55, 0.75),
    (75, 0.55, 0.75),
    (285, 0.40, 0.85),
)
PALETTE: tuple[tuple[float, float, float], ...] = tuple(
    colorsys.hsv_to_rgb(h / 360.0, s, v) for h, s, v in _PALETTE_HSV
)
_GOLDEN = 0.6180339887498949


@lru_cache(maxsize=4096)
def _color(track_id: int) -> tuple[float, float, float]:
    if track_id <= 0:
        return GREY
    if track_id <= len(PALETTE):
        return PALETTE[track_id - 1]
    # beyond the palette: golden-ratio hue steps; saturation and value from a fixed
    # integer hash so the colour depends on the id only (stable across runs)
    mixed = (track_id * 2654435761) & 0xFFFFFFFF
    hue = (track_id * _GOLDEN) % 1.0
    sat = 0.55 + 0.35 * ((mixed >> 8) & 0xFF) / 255.0
    val = 0.75 + 0.25 * ((mixed >> 16) & 0xFF) / 255.0
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return (r, g, b)


def color_for_id(track_id: int) -> tuple[float, float, float]:
    """RGB colour in [0, 1] for a track id: ids 1..20 use a fixed palette, larger ids a
    stable hash; ids <= 0 are grey."""
    if isinstance(track_id, bool) or not isinstance(track_id, Integral):
        if isinstance(track_id, float) and track_id.is_integer():
            track_id = int(track_id)
        else:
            raise TypeError(f"track_id must be an integer; got {track_id!r}")
    return _color(int(track_id))


def colors_for_ids(ids: np.ndarray) -> np.ndarray:
    """Float array ``(..., 3)`` of the colours of an integer array of ids."""
    ids = np.asarray(ids, dtype=np.int64)
    uniq, inverse = np.unique(ids, return_inverse=True)
    table = np.array([_color(int(i)) for i in uniq], dtype=np.float64).reshape(-1, 3)
    return table[inverse.reshape(ids.shape)]
