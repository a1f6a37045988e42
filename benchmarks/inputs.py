"""The benchmark's inputs: test-split batches of data presets and videos with exactly N objects.

:func:`fixed_count_video` draws its own videos because the data generators cannot promise an
exact object count in every frame (objects enter, leave and overlap there); here every object
keeps its own grid cell, so each frame shows exactly N separate objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pyro_scalor.model.config import ModelConfig

DEFAULT_PRESETS = ("dsprites-ld", "dsprites-vhd")
DEFAULT_FIXED_COUNTS = (10, 60)


@dataclass
class BenchInput:
    """A pool of videos to draw training batches from.

    ``name`` labels the input in the report (a preset name or ``fixed-N``); ``videos`` is float32
    (N, T, C, H, W) in [0, 1]; ``objects_per_frame`` the mean number of visible objects per
    frame over the pool; ``source`` says where the videos came from.
    """

    name: str
    videos: torch.Tensor
    objects_per_frame: float
    source: str


def fixed_count_video(
    num_objects: int,
    frames: int,
    *,
    batch_size: int = 1,
    image_size: int = 64,
    channels: int = 3,
    seed: int = 0,
    min_size: int = 5,
    max_size: int = 8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Videos with exactly ``num_objects`` separate coloured squares in every frame.

    The frame is split into a g x g grid of cells (g = ceil(sqrt(num_objects))); each object gets
    its own cell, a side of ``min_size``..``max_size`` pixels (at most the cell side minus one),
    a random colour and a constant velocity of 1-2 pixels per frame per axis, reflecting off its
    cell's walls. Objects therefore never touch or leave the view, so every frame shows exactly
    ``num_objects`` objects on black. Deterministic for a given ``seed``.

    Returns ``video`` float32 (batch_size, frames, channels, image_size, image_size) in [0, 1]
    and ``boxes`` int64 (batch_size, frames, num_objects, 4) in pixels
    ``(x_min, y_min, x_max, y_max)``, max exclusive. Raises ValueError when the objects cannot
    fit (cells smaller than ``min_size + 1`` pixels).
    """
    if num_objects < 1 or frames < 1 or batch_size < 1:
        raise ValueError("num_objects, frames and batch_size must be >= 1")
    if not 1 <= min_size <= max_size:
        raise ValueError(f"need 1 <= min_size <= max_size, got {min_size}, {max_size}")
    grid = math.ceil(math.sqrt(num_objects))
    cell = image_size // grid
    if cell < min_size + 1:
        raise ValueError(
            f"{num_objects} objects of >= {min_size} px do not fit in a {image_size}x{image_size} "
            f"frame ({grid}x{grid} cells of {cell} px); use fewer or smaller objects"
        )
    side_max = min(max_size, cell - 1)
    rng = np.random.default_rng(seed)
    video = np.zeros((batch_size, frames, channels, image_size, image_size), np.float32)
    boxes = np.zeros((batch_size, frames, num_objects, 4), np.int64)
    steps = np.arange(frames)
    for b in range(batch_size):
        cells = rng.choice(grid * grid, size=num_objects, replace=False)
        for k, c in enumerate(cells):
            side = int(rng.integers(min_size, side_max + 1))
            room = cell - 1 - side  # free positions inside the cell, keeping a 1 px gap
            colour = rng.uniform(0.3, 1.0, size=3).astype(np.float32)
            if channels == 1:
                colour = colour.mean(keepdims=True)
            origin = np.array([c % grid, c // grid]) * cell
            start = rng.integers(0, room + 1, size=2)
            velocity = rng.choice([-2, -1, 1, 2], size=2)
            for axis in range(2):
                pos = _reflect(start[axis] + velocity[axis] * steps, room)
                boxes[b, :, k, axis] = origin[axis] + pos
                boxes[b, :, k, axis + 2] = origin[axis] + pos + side
            for t in range(frames):
                x0, y0, x1, y1 = boxes[b, t, k]
                video[b, t, :, y0:y1, x0:x1] = colour[:, None, None]
    return torch.from_numpy(video), torch.from_numpy(boxes)


def _reflect(pos: np.ndarray, room: int) -> np.ndarray:
    """Fold positions ``pos`` (int array) into [0, room] by reflecting off both ends."""
    if room == 0:
        return np.zeros_like(pos)
    period = 2 * room
    p = np.mod(pos, period)
    return np.where(p > room, period - p, p)


def load_inputs(
    config: ModelConfig,
    *,
    presets: tuple[str, ...] | list[str] = DEFAULT_PRESETS,
    fixed_counts: tuple[int, ...] | list[int] = DEFAULT_FIXED_COUNTS,
    frames: int = 8,
    num_sequences: int = 8,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> list[BenchInput]:
    """The benchmark's inputs: ``num_sequences`` videos of ``frames`` frames each.

    Takes the model ``config`` (image size and channels), data ``presets`` (their test split,
    generated and cached under ``cache_dir`` on first use) and ``fixed_counts`` (synthetic videos
    from :func:`fixed_count_video`). Returns one :class:`BenchInput` per preset, then per count.
    Raises ValueError when a preset's frames or image size do not match.
    """
    from pyro_scalor.data import load_dataset

    inputs = []
    for preset in presets:
        data = load_dataset(preset, "test", num_sequences=num_sequences, cache_dir=cache_dir)
        dc = data.config
        if dc.seq_len < frames:
            raise ValueError(f"preset {preset!r} has {dc.seq_len} frames; --frames is {frames}")
        if dc.image_size != config.image_size:
            raise ValueError(
                f"preset {preset!r} has {dc.image_size}px frames; the model expects "
                f"{config.image_size}px"
            )
        videos = data.videos()[:, :frames]
        if config.channels == 1:
            videos = videos.mean(2, keepdim=True)
        visible = np.asarray(data.arrays["visible"])[:, :frames]
        per_frame = float(visible.sum(-1).mean())
        inputs.append(BenchInput(preset, videos, per_frame, f"{preset} test split"))
    for n in fixed_counts:
        videos, _ = fixed_count_video(
            n,
            frames,
            batch_size=num_sequences,
            image_size=config.image_size,
            channels=config.channels,
            seed=seed + n,
        )
        inputs.append(BenchInput(f"fixed-{n}", videos, float(n), f"synthetic, seed {seed + n}"))
    return inputs
