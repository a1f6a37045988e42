"""Users' own videos: read an mp4 (any file PyAV decodes), a folder of PNG frames or a ``.npy``
array, and fit its frames to a model's square frame size.

Frames are read as float32 (T, H, W, 3) in [0, 1] and fitted (cropped and resized) to float32
(T, 3, S, S) torch tensors, the layout the model takes. Every bad input (missing, unreadable,
empty, wrong shape or values) raises a ``FileNotFoundError`` or ``ValueError`` whose message is
one line naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "CROPS",
    "INSTALL_HINT",
    "decode_frames",
    "fit_frames",
    "read_npy",
    "read_png_folder",
    "read_video",
    "resize_frames",
]

INSTALL_HINT = 'pip install "pyro-scalor[video]"'
#: How a frame is made square: its centre square, or the whole frame squeezed.
CROPS = ("center", "none")
_NPY_EXPECTED = "(T, H, W, C) or (T, C, H, W) with C = 1 or 3, uint8 or floats in [0, 1]"


def decode_frames(path: str | Path, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Frames ``start .. stop - 1`` of a video file as uint8 RGB (F, H, W, 3), via PyAV."""
    try:
        import av
    except ImportError as err:
        raise ImportError(f"decoding video needs PyAV: {INSTALL_HINT}") from err
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no video file at {path}")
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path} has no video stream")
            for i, frame in enumerate(container.decode(video=0)):
                if stop is not None and i >= stop:
                    break
                if i >= start:
                    frames.append(frame.to_ndarray(format="rgb24"))
    except av.FFmpegError as err:
        raise ValueError(f"{path} is not a readable video ({err})") from None
    if not frames:
        raise ValueError(f"{path} has no frames in [{start}, {stop})")
    return np.stack(frames)


def _natural_key(path: Path) -> list:
    """Sort key that puts frame_2.png before frame_10.png."""
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", path.name.lower())]


def read_png_folder(folder: str | Path, max_frames: int | None = None) -> np.ndarray:
    """The ``*.png`` files of ``folder`` in natural name order as uint8 RGB (F, H, W, 3)."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() == ".png"), key=_natural_key)
    if not files:
        raise ValueError(f"{folder} has no .png frames")
    frames = []
    for path in files[:max_frames]:
        try:
            with Image.open(path) as image:
                frame = np.asarray(image.convert("RGB"))
        except (OSError, UnidentifiedImageError) as err:
            raise ValueError(f"{path} is not a readable PNG ({err})") from None
        if frames and frame.shape != frames[0].shape:
            raise ValueError(
                f"{path} is {frame.shape[1]}x{frame.shape[0]} pixels but {files[0].name} is "
                f"{frames[0].shape[1]}x{frames[0].shape[0]}; every frame needs the same size"
            )
        frames.append(frame)
    return np.stack(frames)


def read_npy(path: str | Path, max_frames: int | None = None) -> np.ndarray:
    """A ``.npy`` video, (T, H, W, C) or (T, C, H, W) with C 1 or 3, uint8 or floats in [0, 1],
    as float32 (F, H, W, 3) in [0, 1]."""
    from pyro_scalor.viz.frames import as_frames

    path = Path(path)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable .npy array ({err})") from None
    channels_ok = arr.ndim == 4 and (arr.shape[1] in (1, 3) or arr.shape[-1] in (1, 3))
    if not channels_ok or 0 in arr.shape:
        raise ValueError(f"{path} holds an array of shape {arr.shape}; expected {_NPY_EXPECTED}")
    arr = np.asarray(arr[:max_frames])
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"{path} holds {arr.dtype} values; expected {_NPY_EXPECTED}")
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise ValueError(
                f"{path} holds values outside [0, 1] (min {np.nanmin(arr):.4g}, max "
                f"{np.nanmax(arr):.4g}); expected uint8 or floats in [0, 1]"
            )
    return as_frames(arr, str(path))


def read_video(path: str | Path, max_frames: int | None = None) -> np.ndarray:
    """The first ``max_frames`` (default: all) frames of a video as float32 (F, H, W, 3) in
    [0, 1]: ``path`` is a folder of PNG frames, a ``.npy`` array or a video file (PyAV)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no video at {path} (expected an mp4, a PNG folder or a .npy)")
    if path.is_dir():
        frames = read_png_folder(path, max_frames)
    elif path.suffix.lower() == ".npy":
        return read_npy(path, max_frames)
    elif path.suffix.lower() == ".png":
        raise ValueError(f"{path} is one picture; put the frames of a video in a folder")
    else:
        frames = decode_frames(path, 0, max_frames)
    return frames.astype(np.float32) / 255.0


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Frames (F, H, W, 3), uint8 or floats in [0, 1], resized (bilinear, antialiased) to float32
    (F, 3, height, width) in [0, 1] for ``size = (height, width)``."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    if frames.dtype == np.uint8:
        video = video / 255.0
    if tuple(video.shape[-2:]) == tuple(size):
        return video
    return F.interpolate(
        video, size=size, mode="bilinear", antialias=True, align_corners=False
    ).clamp_(0.0, 1.0)


def fit_frames(frames: np.ndarray, size: int, crop: str = "center") -> torch.Tensor:
    """Frames (F, H, W, 3) made square and resized to float32 (F, 3, size, size).

    ``crop`` 'center' keeps the central min(H, W) square (no distortion); 'none' squeezes the
    whole frame into the square.
    """
    if crop not in CROPS:
        raise ValueError(f"unknown crop {crop!r}; valid choices: {', '.join(CROPS)}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if crop == "center":
        height, width = frames.shape[1:3]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        frames = frames[:, top : top + side, left : left + side]
    return resize_frames(frames, (size, size))
