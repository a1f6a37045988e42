"""Animated GIFs of frame sequences (via Pillow)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from PIL import Image

from pyro_scalor.viz.frames import as_uint8_frames

__all__ = ["save_gif"]

logger = logging.getLogger(__name__)


def save_gif(frames: Any, path: str | os.PathLike, fps: float = 4, loop: int = 0) -> Path:
    """Write frames ``(T, H, W, 3)`` (uint8, float [0, 1] or torch ``(T, 3, H, W)``) as an
    animated GIF at ``fps`` frames per second, looping ``loop`` times (0 = forever).

    Creates missing parent folders and returns the path. Pillow merges identical
    consecutive frames into one longer frame, so reading back may give fewer than T frames
    (the timing is kept).
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive; got {fps}")
    if isinstance(loop, bool) or int(loop) != loop or loop < 0:
        raise ValueError(f"loop must be a non-negative integer (0 = forever); got {loop}")
    images = [Image.fromarray(frame) for frame in as_uint8_frames(frames, "frames")]
    path = Path(path)
    if path.suffix.lower() != ".gif":
        logger.warning("save_gif writes GIF data to %s, whose suffix is not .gif", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # GIF stores delays in hundredths of a second
    duration_ms = max(10, int(round(100.0 / fps)) * 10)
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=duration_ms,
        loop=int(loop),
        optimize=False,
    )
    logger.debug("wrote %d frames (%dx%d) to %s", len(images), *images[0].size, path)
    return path
