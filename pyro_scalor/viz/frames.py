"""Conversion of frames in the accepted layouts to one form for drawing.

Accepted: numpy ``(T, H, W, C)`` or ``(T, C, H, W)`` and torch ``(T, C, H, W)`` (or
channel-last) with ``C`` 1 or 3, as floats in [0, 1], uint8 in 0..255 or bool.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyro_scalor.metrics.boxes import to_numpy

__all__ = ["as_frames", "as_image", "as_uint8_frames"]

_EXPECTED = (
    "frames of shape (T, H, W, 3) (numpy) or (T, 3, H, W) (torch), 1 or 3 channels, "
    "floats in [0, 1] or uint8"
)


def _channel_last(arr: np.ndarray, torch_input: bool, name: str) -> np.ndarray:
    """Move the channel axis of a 4-d array to the end, guessing its position."""
    first_ok = arr.shape[1] in (1, 3)
    last_ok = arr.shape[-1] in (1, 3)
    if torch_input and first_ok or first_ok and not last_ok:
        return np.moveaxis(arr, 1, -1)
    if last_ok:
        return arr
    raise ValueError(
        f"{name} has shape {arr.shape} with no axis of 1 or 3 channels; expected {_EXPECTED}"
    )


def _as_channel_last(frames: Any, name: str) -> np.ndarray:
    torch_input = hasattr(frames, "detach")
    arr = to_numpy(frames, name)
    if arr.ndim != 4:
        hint = ""
        if arr.ndim == 3:
            hint = " (one frame? add a time axis with x[None]; greyscale? add x[..., None])"
        raise ValueError(f"{name} has shape {arr.shape}{hint}; expected {_EXPECTED}")
    if 0 in arr.shape:
        raise ValueError(f"{name} is empty (shape {arr.shape}); expected {_EXPECTED}")
    return _channel_last(arr, torch_input, name)


def as_uint8_frames(frames: Any, name: str = "frames") -> np.ndarray:
    """Return frames as uint8 ``(T, H, W, 3)``; uint8 input is kept exactly."""
    arr = _as_channel_last(frames, name)
    if arr.dtype == np.uint8:
        out = arr
    else:
        out = np.round(_to_unit_float(arr, name) * 255.0).astype(np.uint8)
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    return np.ascontiguousarray(out)


def _to_unit_float(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name} has dtype {arr.dtype}; expected {_EXPECTED}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -0.5 or hi > 1.5:
        raise ValueError(
            f"{name} has values in [{lo:.4g}, {hi:.4g}]; expected floats in [0, 1] "
            "(divide 8-bit values by 255)"
        )
    return np.clip(arr, 0.0, 1.0)


def as_frames(frames: Any, name: str = "frames") -> np.ndarray:
    """Return frames as float32 ``(T, H, W, 3)`` in [0, 1].

    Float values in [-0.5, 1.5] are clipped to [0, 1]; anything wider is an error.
    """
    arr = _to_unit_float(_as_channel_last(frames, name), name)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr


def as_image(frame: Any, name: str = "frame") -> np.ndarray:
    """Return one frame ``(H, W, 3)`` / ``(3, H, W)`` / ``(H, W)`` as float32 ``(H, W, 3)``."""
    torch_input = hasattr(frame, "detach")
    arr = to_numpy(frame, name)
    if arr.ndim == 2:
        arr, torch_input = arr[..., None], False
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(
            f"{name} has shape {arr.shape}; expected one frame of shape (H, W, 3) or (3, H, W)"
        )
    arr = _to_unit_float(_channel_last(arr[None], torch_input, name), name)[0]
    return np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr
