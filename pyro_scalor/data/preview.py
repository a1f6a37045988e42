"""Pictures of one generated sequence with its ground truth, for checking a preset by eye."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pyro_scalor.data.config import DataConfig
from pyro_scalor.data.generator import SequenceData, generate_sequence

#: Brightness of the frames under the ground-truth boxes: an outline drawn in its object's own
#: colour would vanish on the undimmed object.
BOX_BACKDROP_LEVEL = 0.6
#: Frames per PNG grid; longer sequences get one grid per chunk.
FRAMES_PER_GRID = 8


def appearing(config: DataConfig, seq: SequenceData) -> np.ndarray | None:
    """Bool (T, O): the object appears at that frame (only for presets with discovery steps)."""
    if not config.discovery_steps:
        return None
    birth = np.full(config.max_slots, -1)
    birth[: seq.scene.num_objects] = seq.scene.birth
    return (np.arange(config.seq_len)[:, None] == birth[None]) & seq.visible


def write_preview(
    config: DataConfig,
    split: str,
    index: int,
    out_dir: str | Path,
    *,
    scale: int = 4,
    fps: float = 4.0,
) -> list[Path]:
    """Write a GIF of sequence ``index`` of ``split`` with its boxes coloured by id, and PNG
    grids (rows "original" and "boxes", at most ``FRAMES_PER_GRID`` frames each).

    Returns the paths written: the GIF first, then the PNGs in frame order.
    """
    from pyro_scalor.viz import (
        plot_sequence_grid,
        render_boxes_on_frames,
        save_figure,
        save_gif,
    )

    seq = generate_sequence(config, split, index)
    frames = seq.video.astype(np.float32) / 255.0
    dimmed = frames * BOX_BACKDROP_LEVEL
    new = appearing(config, seq)
    stem = Path(out_dir) / f"{config.name}-{split}-{index}"
    gif = render_boxes_on_frames(dimmed, seq.boxes, seq.ids, seq.visible, new, scale=scale)
    paths = [save_gif(gif, stem.with_suffix(".gif"), fps=fps)]
    counts = seq.visible.sum(axis=1)
    t_len = config.seq_len
    for start in range(0, t_len, FRAMES_PER_GRID):
        stop = min(start + FRAMES_PER_GRID, t_len)
        part = slice(start, stop)
        title = (
            f"{config.name} ({split} #{index}): {seq.scene.num_objects} objects in the "
            f"environment, {counts[part].min()}-{counts[part].max()} visible per frame"
        )
        marked = [s - start for s in config.discovery_steps if start <= s < stop]
        fig = plot_sequence_grid(
            {"original": frames[part], "boxes": dimmed[part]},
            boxes=seq.boxes[part],
            ids=seq.ids,
            valid=seq.visible[part],
            discovered=None if new is None else new[part],
            title=title,
            margin_frames=marked or None,
            margin_label="new objects appear" if marked else None,
        )
        # number the columns by their frame in the whole sequence
        for t, ax in enumerate(fig.axes[: stop - start]):
            ax.set_title(f"t={start + t}", fontsize=9, color=ax.title.get_color())
        name = stem.name if t_len <= FRAMES_PER_GRID else f"{stem.name}-t{start:02d}-{stop - 1:02d}"
        paths.append(save_figure(fig, stem.with_name(name + ".png")))
    return paths
