"""Pictures of generated videos, like the SCALOR paper's Fig. 6.

Rows generated scene / background / per-object segmentation coloured by track id / trajectories,
with a red margin on the imagined frames, plus GIFs. ``result`` is anything with the fields of
:class:`pyro_scalor.api.GenerationResult`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import to_rgb

from pyro_scalor.metrics.boxes import box_centers, to_numpy
from pyro_scalor.viz.colors import color_for_id, colors_for_ids
from pyro_scalor.viz.figures import (
    MARGIN_COLOR,
    plot_sequence_grid,
    plot_trajectories,
    save_figure,
)
from pyro_scalor.viz.frames import as_frames
from pyro_scalor.viz.gif import save_gif

__all__ = [
    "IMAGINED_LABEL",
    "generation_rows",
    "segmentation_frames",
    "trajectory_frames",
    "write_generation_pictures",
]

#: Legend label of the red margin drawn around imagined frames.
IMAGINED_LABEL = "imagined (generated) frame"
#: RGB of the red border on imagined frames in GIFs: the grids' margin colour.
BORDER_RGB = np.array(to_rgb(MARGIN_COLOR), dtype=np.float32)


def segmentation_frames(masks, boxes, ids, valid, depth) -> np.ndarray:
    """Per-object segmentation of one sequence, coloured by track id, on black.

    Takes the foreground mask (T, 1, H, W), pixel boxes (T, K, 4), ids, valid and depth (T, K).
    Each pixel takes the colour of the frontmost (smallest depth, as in the renderer) present
    object whose box contains it, scaled by the foreground mask there, so the rendered shapes
    show in their track's colour. Returns float32 (T, H, W, 3).
    """
    masks, boxes = (
        to_numpy(masks, "masks").astype(np.float32),
        to_numpy(boxes, "boxes").astype(np.float32),
    )
    ids, valid, depth = (
        to_numpy(ids, "ids"),
        to_numpy(valid, "valid").astype(bool),
        to_numpy(depth, "depth").astype(np.float32),
    )
    n_frames, height, width = masks.shape[0], masks.shape[-2], masks.shape[-1]
    py = np.arange(height, dtype=np.float32)[:, None] + 0.5
    px = np.arange(width, dtype=np.float32)[None, :] + 0.5
    out = np.zeros((n_frames, height, width, 3), dtype=np.float32)
    for t in range(n_frames):
        x0, y0, x1, y1 = (boxes[t, :, i, None, None] for i in range(4))
        inside = (px >= x0) & (px < x1) & (py >= y0) & (py < y1) & valid[t, :, None, None]
        key = np.where(inside, depth[t, :, None, None], np.inf)  # (K, H, W)
        front = key.argmin(0)
        covered = inside.any(0)
        colors = colors_for_ids(ids[t]).astype(np.float32)  # (K, 3)
        rgb = np.where(covered[..., None], colors[front], 0.6)  # uncovered mask: grey
        out[t] = rgb * masks[t, 0, :, :, None]
    return np.clip(out, 0.0, 1.0)


def draw_segment(canvas: np.ndarray, a, b, color) -> None:
    h, w = canvas.shape[:2]
    n = int(max(abs(b[0] - a[0]), abs(b[1] - a[1])) * 2) + 2
    xs = np.clip(np.rint(np.linspace(a[0], b[0], n) - 0.5).astype(int), 0, w - 1)
    ys = np.clip(np.rint(np.linspace(a[1], b[1], n) - 0.5).astype(int), 0, h - 1)
    canvas[ys, xs] = color


def trajectory_frames(boxes, ids, valid, height: int, width: int) -> np.ndarray:
    """Box-centre trajectories up to each frame, one colour per track id, on black.

    Takes pixel boxes (T, K, 4), ids and valid (T, K). Frame t shows every track's path over
    frames 0..t (a line joins consecutive frames where the track is present) and a 3 x 3 dot
    where each present object is at t. Returns float32 (T, H, W, 3).
    """
    boxes, ids, valid = (
        to_numpy(boxes, "boxes"),
        to_numpy(ids, "ids"),
        to_numpy(valid, "valid").astype(bool),
    )
    centers = box_centers(boxes.astype(np.float64))
    n_frames = boxes.shape[0]
    paths = np.zeros((height, width, 3), dtype=np.float32)
    out = np.zeros((n_frames, height, width, 3), dtype=np.float32)
    last: dict[int, tuple[int, np.ndarray]] = {}
    for t in range(n_frames):
        dots = []
        for k in np.flatnonzero(valid[t]):
            track = int(ids[t, k])
            color = np.asarray(color_for_id(track), dtype=np.float32)
            c = centers[t, k]
            prev = last.get(track)
            if prev is not None and prev[0] == t - 1:
                draw_segment(paths, prev[1], c, color)
            last[track] = (t, c)
            dots.append((c, color))
        frame = paths.copy()
        for c, color in dots:
            x = int(np.clip(np.floor(c[0]), 0, width - 1))
            y = int(np.clip(np.floor(c[1]), 0, height - 1))
            frame[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2] = color
        out[t] = frame
    return out


def with_border(frames: np.ndarray, marked, width: int = 2) -> np.ndarray:
    """Copy of frames (T, H, W, 3) with a red border of ``width`` pixels on the ``marked``."""
    out = frames.copy()
    for t in marked:
        out[t, :width], out[t, -width:] = BORDER_RGB, BORDER_RGB
        out[t, :, :width], out[t, :, -width:] = BORDER_RGB, BORDER_RGB
    return out


def pad_frames(frames: np.ndarray, n_frames: int) -> np.ndarray:
    """Pad frames (T, H, W, 3) with mid-grey frames to ``n_frames`` (missing ground truth)."""
    if frames.shape[0] >= n_frames:
        return frames[:n_frames]
    pad = np.full((n_frames - frames.shape[0],) + frames.shape[1:], 0.5, dtype=frames.dtype)
    return np.concatenate([frames, pad])


def generation_rows(result, index: int = 0, real=None) -> dict[str, np.ndarray]:
    """The rows of a Fig. 6-style grid for sequence ``index`` of a GenerationResult.

    Rows: ``real`` (only if ``real`` frames (T', C, H, W) are given; grey where the data has no
    frame), ``generated`` (observed frames reconstructed, then imagined ones), ``background``,
    ``segmentation`` (see :func:`segmentation_frames`), ``trajectories`` (see
    :func:`trajectory_frames`) and ``boxes`` (generated frames, for the boxes). Each value is
    float32 (T, H, W, 3).
    """
    r, i = result, index
    n_frames, height, width = r.frames.shape[1], r.frames.shape[-2], r.frames.shape[-1]
    rows: dict[str, np.ndarray] = {}
    if real is not None:
        rows["real"] = pad_frames(as_frames(real, "real"), n_frames)
    generated = as_frames(r.frames[i], "frames")
    rows["generated"] = generated
    rows["background"] = as_frames(r.background[i], "background")
    rows["segmentation"] = segmentation_frames(
        r.masks[i], r.boxes[i], r.ids[i], r.valid[i], r.depth[i]
    )
    rows["trajectories"] = trajectory_frames(r.boxes[i], r.ids[i], r.valid[i], height, width)
    rows["boxes"] = generated
    return rows


def write_generation_pictures(
    result,
    out_dir: str | Path,
    *,
    real=None,
    max_sequences: int = 3,
    prefix: str = "generation",
) -> list[Path]:
    """Write pictures of up to ``max_sequences`` sequences of a GenerationResult.

    Per sequence i: ``{prefix}_{i}.png`` (the grid of :func:`generation_rows`, red margin on the
    imagined frames, box colour = track id, white dot = discovered at that frame),
    ``{prefix}_{i}_trajectories.png`` (whole-sequence trajectories; red rings mark imagined
    positions) and ``{prefix}_{i}.gif`` (real | generated | segmentation | trajectories, red
    border on imagined frames). ``real`` (B, T', C, H, W) adds the ground-truth row.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_frames = result.frames.shape[1]
    imagined = list(range(result.observed, n_frames))
    kind = (
        "prior sample"
        if result.observed == 0
        else (f"observed {result.observed} frames, imagined {n_frames - result.observed}")
    )
    paths: list[Path] = []
    for i in range(min(max_sequences, result.frames.shape[0])):
        rows = generation_rows(result, i, None if real is None else real[i])
        boxes, ids, valid, discovered = (
            to_numpy(getattr(result, k)[i], k) for k in ("boxes", "ids", "valid", "discovered")
        )
        png = out_dir / f"{prefix}_{i}.png"
        plot_sequence_grid(
            rows,
            path=png,
            boxes=boxes,
            ids=ids,
            valid=valid,
            discovered=discovered,
            title=f"{prefix} {i}: {kind}" + (" (red margin = imagined)" if imagined else ""),
            margin_frames=imagined,
            margin_label=IMAGINED_LABEL,
        )
        fig = plot_trajectories(None, boxes, ids, valid)
        ax = fig.axes[0]
        ax.set_xlim(0, result.frames.shape[-1])
        ax.set_ylim(result.frames.shape[-2], 0)
        if imagined:
            sel = valid[imagined].astype(bool)
            pts = box_centers(boxes[imagined].astype(np.float64))[sel]
            ring = ax.scatter(
                pts[:, 0],
                pts[:, 1],
                s=40,
                facecolors="none",
                edgecolors=MARGIN_COLOR,
                linewidths=1.2,
                label="imagined position",
                zorder=5,
            )
            ax.legend(handles=[ring], loc="lower right", fontsize=7)
        traj = save_figure(fig, out_dir / f"{prefix}_{i}_trajectories.png")
        panels = [
            rows[k] for k in ("real", "generated", "segmentation", "trajectories") if k in rows
        ]
        strip = np.concatenate([with_border(p, imagined) for p in panels], axis=2)
        strip = strip.repeat(2, axis=1).repeat(2, axis=2)
        gif = save_gif(strip, out_dir / f"{prefix}_{i}.gif", fps=2)
        paths += [png, traj, gif]
    return paths
