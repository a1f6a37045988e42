"""Pictures of tracked videos: the tracking grid (original / reconstruction / background /
boxes) and a GIF with the tracked boxes beside the reconstruction.

``result`` is anything with the fields of :class:`pyro_scalor.api.TrackingResult` (batched:
boxes (B, T, K, 4), ids, valid, discovered (B, T, K), reconstruction and background
(B, T, C, H, W)); ``video`` is (B, T, C, H, W) in [0, 1]. Tensors may live on any device.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from pyro_scalor.metrics.boxes import to_numpy
from pyro_scalor.viz.figures import plot_sequence_grid
from pyro_scalor.viz.frames import as_frames
from pyro_scalor.viz.gif import save_gif
from pyro_scalor.viz.raster import render_boxes_on_frames

__all__ = ["plot_tracking_grid", "tracking_rows", "write_tracking_pictures"]

#: Every frame of a sequence.
ALL = slice(None)
#: Title of the grid when none is given: what the white dot means.
DEFAULT_TITLE = "sequence {index}: white dot = discovered at that frame"


def _tracks(result: Any, index: int, frames: slice = ALL) -> dict[str, np.ndarray]:
    keys = ("boxes", "ids", "valid", "discovered")
    return {k: to_numpy(getattr(result, k)[index][frames], k) for k in keys}


def tracking_rows(
    video: Any, result: Any, index: int = 0, frames: slice = ALL
) -> dict[str, np.ndarray]:
    """The grid's rows for sequence ``index`` (its ``frames``): original, reconstruction,
    background and boxes (the original again, for the boxes), each float32 (T, H, W, 3)."""
    original = as_frames(video[index][frames], "video")
    return {
        "original": original,
        "reconstruction": as_frames(result.reconstruction[index][frames], "reconstruction"),
        "background": as_frames(result.background[index][frames], "background"),
        "boxes": original,
    }


def plot_tracking_grid(
    video: Any,
    result: Any,
    index: int = 0,
    *,
    frames: slice = ALL,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """The tracking grid of sequence ``index`` (its ``frames``, see :func:`tracking_rows`),
    boxes coloured by track id and a white dot on newly discovered objects; saved to ``path``
    if given."""
    return plot_sequence_grid(
        tracking_rows(video, result, index, frames),
        path=path,
        **_tracks(result, index, frames),
        title=DEFAULT_TITLE.format(index=index) if title is None else title,
    )


def write_tracking_pictures(
    video: Any,
    result: Any,
    out_dir: str | os.PathLike,
    max_sequences: int = 3,
    *,
    prefix: str = "tracking",
    fps: float = 3,
    grid_frames: int | None = None,
) -> list[Path]:
    """For up to ``max_sequences`` sequences i: ``{prefix}_{i}.png`` (the tracking grid of the
    first ``grid_frames`` frames, default all) and ``{prefix}_{i}.gif`` (tracked boxes on the
    video | the reconstruction, every frame). Returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(min(max_sequences, len(video))):
        png = out_dir / f"{prefix}_{i}.png"
        plot_tracking_grid(video, result, i, frames=slice(grid_frames), path=png)
        tracks = _tracks(result, i)
        rows = tracking_rows(video, result, i)
        frames = render_boxes_on_frames(rows["boxes"], **tracks)
        recon = render_boxes_on_frames(
            rows["reconstruction"], tracks["boxes"], tracks["ids"], np.zeros_like(tracks["valid"])
        )
        gif = save_gif(np.concatenate([frames, recon], 2), out_dir / f"{prefix}_{i}.gif", fps=fps)
        paths += [png, gif]
    return paths
