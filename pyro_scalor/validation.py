"""Checks for user-supplied videos and values, with messages that name the expected form."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

EXPECTED_VIDEO = (
    "a float tensor of shape (batch, time, channels, height, width) with values in [0, 1]"
)


def capturing() -> bool:
    """True while a CUDA graph is being captured on the current stream.

    Value checks (``.all()``, ``float(x)``, ``torch.equal``) synchronise with the host, which
    capture forbids; code that makes them skips them then (a graphed training step checks its
    inputs before copying them into the graph's static tensors).
    """
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


class VideoValidationError(ValueError):
    """Raised when a video does not have the expected shape, dtype, range or length."""


def validate_video(
    video,
    *,
    name: str = "video",
    channels: Sequence[int] | None = (1, 3),
    height: int | None = None,
    width: int | None = None,
    min_frames: int = 1,
    max_frames: int | None = None,
) -> torch.Tensor:
    """Check a batch of videos and return it as a float32 tensor.

    Takes a tensor or array of shape (B, T, C, H, W) with values in [0, 1]; raises
    ``VideoValidationError`` naming the problem and the expected form otherwise.
    """
    if isinstance(video, np.ndarray):
        video = torch.from_numpy(video)
    if not isinstance(video, torch.Tensor):
        raise VideoValidationError(
            f"{name} must be a torch.Tensor or numpy array, got {type(video).__name__}; "
            f"expected {EXPECTED_VIDEO}"
        )
    if video.dim() != 5:
        hint = ""
        if video.dim() == 4:
            hint = " (a single video of shape (T, C, H, W)? add a batch dim with video[None])"
        raise VideoValidationError(
            f"{name} has {video.dim()} dims with shape {tuple(video.shape)}{hint}; "
            f"expected {EXPECTED_VIDEO}"
        )
    if video.dtype == torch.bool or not (video.is_floating_point() or video.dtype == torch.uint8):
        raise VideoValidationError(
            f"{name} has dtype {video.dtype}; expected a floating dtype ({EXPECTED_VIDEO})"
        )
    if video.dtype == torch.uint8:
        raise VideoValidationError(
            f"{name} has dtype uint8 (values 0..255); convert with video.float() / 255 "
            f"to get {EXPECTED_VIDEO}"
        )
    _, t, c, h, w = video.shape
    if video.numel() == 0:
        raise VideoValidationError(f"{name} is empty (shape {tuple(video.shape)})")
    if channels is not None and c not in channels:
        raise VideoValidationError(
            f"{name} has {c} channels (shape {tuple(video.shape)}); expected one of "
            f"{tuple(channels)} channels in dim 2 of (batch, time, channels, height, width)"
        )
    if height is not None and h != height or width is not None and w != width:
        raise VideoValidationError(
            f"{name} has frames of {h}x{w}; this model expects {height}x{width} (height x width)"
        )
    if t < min_frames:
        raise VideoValidationError(f"{name} has {t} frames; at least {min_frames} are needed")
    if max_frames is not None and t > max_frames:
        raise VideoValidationError(f"{name} has {t} frames; at most {max_frames} are allowed")
    if capturing():
        return video.float()
    if not torch.isfinite(video).all():
        n_nan = int(torch.isnan(video).sum())
        n_inf = int(torch.isinf(video).sum())
        raise VideoValidationError(
            f"{name} contains {n_nan} NaN and {n_inf} infinite values; expected {EXPECTED_VIDEO}"
        )
    lo, hi = float(video.min()), float(video.max())
    if lo < 0.0 or hi > 1.0:
        raise VideoValidationError(
            f"{name} has values in [{lo:.4g}, {hi:.4g}]; expected values in [0, 1] "
            "(divide 8-bit images by 255)"
        )
    return video.float()


def check_choice(value: str, choices: Iterable[str], what: str) -> str:
    """Return ``value`` if it is one of ``choices``; else raise ValueError listing them."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; valid choices: {', '.join(choices)}")
    return value
