"""Matplotlib figures: sequence grids as in the SCALOR paper, trajectories, metric tables.

Every figure is a ``matplotlib.figure.Figure`` with its own Agg canvas, so nothing here
touches pyplot or the global backend; nothing is shown on screen.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from pyro_scalor.metrics.boxes import box_centers, check_flags, check_tracks
from pyro_scalor.viz.colors import DISCOVERED_COLOR, color_for_id, colors_for_ids
from pyro_scalor.viz.frames import as_frames, as_image

__all__ = [
    "new_figure",
    "save_figure",
    "figure_to_array",
    "plot_sequence_grid",
    "plot_trajectories",
    "plot_metrics_table",
    "MARGIN_COLOR",
]

logger = logging.getLogger(__name__)

MARGIN_COLOR = "#d62728"
"""Colour of the thick margin that ``plot_sequence_grid`` draws around ``margin_frames``."""

_DPI = 120
_CELL_IN = 1.2  # size of one frame in the grid, inches
_BOX_LW = 1.3
_MARKER_KW = {
    "marker": "o",
    "markersize": 5.5,
    "markerfacecolor": DISCOVERED_COLOR,
    "markeredgecolor": "black",
    "markeredgewidth": 0.6,
    "linestyle": "none",
}


def new_figure(figsize: tuple[float, float], **kwargs: Any) -> Figure:
    """A ``Figure`` with its own Agg canvas (no pyplot, no global backend change)."""
    fig = Figure(figsize=figsize, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = _DPI) -> Path:
    """Save ``fig`` to ``path`` (format from the suffix, e.g. PNG), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor="white")
    logger.debug("saved figure to %s", path)
    return path


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render ``fig`` and return its pixels as uint8 ``(H, W, 3)`` (e.g. for TensorBoard)."""
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure; got {type(fig).__name__}")
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.array(canvas.buffer_rgba(), dtype=np.uint8)[..., :3]


def _style_frame_axes(ax: Axes, marked: bool) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        if marked:
            spine.set_edgecolor(MARGIN_COLOR)
            spine.set_linewidth(4.0)
        else:
            spine.set_edgecolor("0.75")
            spine.set_linewidth(0.5)


def _draw_boxes(
    ax: Axes,
    boxes: np.ndarray,
    ids: np.ndarray,
    valid: np.ndarray,
    discovered: np.ndarray | None,
) -> None:
    """Draw one frame's boxes ``(N, 4)`` on ``ax`` (pixel data coordinates).

    A discovered box's dot sits on its top-left corner, moved inside the axes limits when
    the corner is outside the frame.
    """
    (left, right), (bottom, top) = ax.get_xlim(), ax.get_ylim()
    colors = colors_for_ids(ids)
    corners = []
    for n in np.flatnonzero(valid):
        x0, y0, x1, y1 = boxes[n]
        ax.add_patch(
            Rectangle(
                (x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colors[n], linewidth=_BOX_LW
            )
        )
        if discovered is not None and discovered[n]:
            corners.append((min(max(x0, left), right), min(max(y0, top), bottom)))
    if corners:
        xs, ys = zip(*corners)
        ax.plot(xs, ys, **_MARKER_KW)


def _box_handle(label: str) -> Line2D:
    """Legend entry showing a hollow square (a box outline)."""
    return Line2D(
        [],
        [],
        color="0.35",
        marker="s",
        markersize=8,
        markerfacecolor="none",
        linestyle="none",
        label=label,
    )


def _check_margin_frames(margin_frames: Iterable[int] | None, n_frames: int) -> set[int]:
    if margin_frames is None:
        return set()
    if isinstance(margin_frames, int | np.integer):
        margin_frames = [int(margin_frames)]
    out = set()
    for i in np.asarray(list(margin_frames)).reshape(-1).tolist():
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n_frames:
            raise ValueError(
                f"margin_frames must hold frame indices in 0..{n_frames - 1}; got {i!r}"
            )
        out.add(i)
    return out


def plot_sequence_grid(
    rows: Mapping[str, Any],
    path: str | os.PathLike | None = None,
    boxes: Any = None,
    ids: Any = None,
    valid: Any = None,
    discovered: Any = None,
    title: str | None = None,
    margin_frames: Iterable[int] | None = None,
    *,
    margin_label: str | None = None,
) -> Figure:
    """Grid of frames: one labelled row per entry of ``rows``, one column per time step.

    ``rows`` maps a label (e.g. "original", "reconstruction", "background", "boxes") to
    frames ``(T, H, W, 3)``; all rows need the same T. Boxes ``(T, N, 4)`` with ids ``(T, N)``
    or ``(N,)``, valid and discovered ``(T, N)`` are drawn on the row named "boxes" (else the
    last row), coloured by id; discovered boxes get a white dot on their top-left corner.
    ``margin_frames`` get a thick red margin in every row (``margin_label`` names them in the
    legend). Saves a PNG to ``path`` if given; returns the Figure.
    """
    if not isinstance(rows, Mapping) or len(rows) == 0:
        raise ValueError("rows must be a non-empty mapping of row label -> frames (T, H, W, 3)")
    labels = list(rows)
    videos = {}
    for label in labels:
        if not isinstance(label, str):
            raise TypeError(f"row labels must be strings; got {label!r}")
        videos[label] = as_frames(rows[label], name=f"rows[{label!r}]")
    n_frames = videos[labels[0]].shape[0]
    for label in labels[1:]:
        if videos[label].shape[0] != n_frames:
            raise ValueError(
                f"rows[{label!r}] has {videos[label].shape[0]} frames but rows[{labels[0]!r}] "
                f"has {n_frames}; every row needs the same number of frames"
            )
    box_row = "boxes" if "boxes" in videos else labels[-1]
    if boxes is None:
        if any(x is not None for x in (ids, valid, discovered)):
            raise ValueError("ids, valid and discovered need boxes (T, N, 4) to go with them")
    else:
        if ids is None:
            ids = np.arange(1, np.shape(boxes)[-2] + 1) if len(np.shape(boxes)) == 3 else None
        boxes, ids, valid = check_tracks(boxes, ids, valid, name="", batched=False)
        if boxes.shape[0] != n_frames:
            raise ValueError(
                f"boxes cover {boxes.shape[0]} frames (shape {boxes.shape}) but the rows have "
                f"{n_frames}; expected boxes of shape (T, N, 4) with T = {n_frames}"
            )
        if discovered is not None:
            discovered = check_flags(discovered, "discovered", valid.shape, ("T", "N"))
    marked = _check_margin_frames(margin_frames, n_frames)

    height, width = videos[labels[0]].shape[1:3]
    aspect = height / width
    label_in = 0.25 + 0.075 * max(len(label) for label in labels)
    has_legend = boxes is not None or (bool(marked) and margin_label is not None)
    fig_w = n_frames * _CELL_IN + label_in
    fig_h = (
        len(labels) * _CELL_IN * aspect
        + 0.35
        + (0.45 if title else 0)
        + (0.35 if has_legend else 0)
    )
    fig = new_figure((fig_w, fig_h), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.02, h_pad=0.02, wspace=0.02, hspace=0.02)
    axes = fig.subplots(len(labels), n_frames, squeeze=False)
    for r, label in enumerate(labels):
        video = videos[label]
        h, w = video.shape[1:3]
        for t in range(n_frames):
            ax = axes[r, t]
            ax.imshow(video[t], extent=(0, w, h, 0), interpolation="nearest")
            ax.set_xlim(0, w)
            ax.set_ylim(h, 0)
            _style_frame_axes(ax, t in marked)
            if label == box_row and boxes is not None:
                _draw_boxes(
                    ax, boxes[t], ids[t], valid[t], None if discovered is None else discovered[t]
                )
            if r == 0:
                ax.set_title(f"t={t}", fontsize=9, color=MARGIN_COLOR if t in marked else "black")
            if t == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=12)
    if has_legend:
        handles = []
        if boxes is not None:
            handles.append(_box_handle(f'box colour = track id (row "{box_row}")'))
            if discovered is not None:
                handles.append(Line2D([], [], label="white dot = newly discovered", **_MARKER_KW))
                handles.append(_box_handle("no dot = propagated from the previous frame"))
        if marked and margin_label is not None:
            handles.append(
                Patch(facecolor="none", edgecolor=MARGIN_COLOR, linewidth=2.5, label=margin_label)
            )
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=min(len(handles), max(1, n_frames // 2)),
            frameon=False,
            fontsize=9,
            handletextpad=0.4,
            columnspacing=1.6,
        )
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_trajectories(
    frame: Any,
    boxes: Any,
    ids: Any,
    valid: Any,
    ax: Axes | None = None,
) -> Figure | Axes:
    """Box-centre trajectories over time, one line per track id in its colour.

    Takes an optional background ``frame (H, W, 3)``, boxes ``(T, N, 4)``, ids ``(T, N)`` or
    ``(N,)`` and valid ``(T, N)``. A dot marks where a track starts, an arrow where it ends
    (lines break where a track is absent). Draws on ``ax`` and returns it if given, else
    returns a new Figure.
    """
    boxes, ids, valid = check_tracks(boxes, ids, valid, name="", batched=False)
    image = None if frame is None else as_image(frame, name="frame")
    fig = None
    if ax is None:
        if image is not None:
            aspect = image.shape[0] / image.shape[1]
        else:
            aspect = 1.0
        fig = new_figure((5.0, 5.0 * aspect + 0.4), layout="constrained")
        ax = fig.add_subplot()
    elif not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None; got {type(ax).__name__}")

    centers = box_centers(boxes)
    n_frames = boxes.shape[0]
    if image is not None:
        h, w = image.shape[:2]
        ax.imshow(image, extent=(0, w, h, 0), interpolation="nearest")
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.set_facecolor("0.12")
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
        if valid.any():
            drawn = boxes[valid]
            lo = drawn[:, :2].min(axis=0)
            hi = drawn[:, 2:].max(axis=0)
            pad = 0.05 * float(max(hi - lo)) + 1.0
            ax.set_xlim(lo[0] - pad, hi[0] + pad)
            ax.set_ylim(hi[1] + pad, lo[1] - pad)
        else:
            ax.invert_yaxis()
    outline = [patheffects.withStroke(linewidth=2.5, foreground="black")]
    track_ids = np.unique(ids[valid])
    for track in track_ids.tolist():
        xy = np.full((n_frames, 2), np.nan)
        for t in range(n_frames):
            slots = np.flatnonzero(valid[t] & (ids[t] == track))
            if slots.size:
                xy[t] = centers[t, slots[0]]
        color = color_for_id(track)
        ax.plot(
            xy[:, 0],
            xy[:, 1],
            "-",
            color=color,
            linewidth=1.6,
            marker=".",
            markersize=4,
            label=f"track {track}",
        )
        seen = np.flatnonzero(~np.isnan(xy[:, 0]))
        start, end = xy[seen[0]], xy[seen[-1]]
        ax.plot(
            *start,
            marker="o",
            markersize=6,
            color=color,
            markeredgecolor="white",
            markeredgewidth=0.8,
            linestyle="none",
        )
        if seen.size > 1 and not np.allclose(xy[seen[-2]], end):
            ax.annotate(
                "",
                xy=tuple(end),
                xytext=tuple(xy[seen[-2]]),
                arrowprops={"arrowstyle": "-|>", "color": color, "linewidth": 1.6},
            )
        ax.annotate(
            str(track),
            xy=tuple(end),
            xytext=(4, -4),
            textcoords="offset points",
            color=color,
            fontsize=8,
            fontweight="bold",
            path_effects=outline,
        )
    ax.set_title(
        f"box-centre trajectories over {n_frames} frames (dot = start, arrow = end)", fontsize=9
    )
    return fig if fig is not None else ax


def _format_value(value: Any) -> str:
    if isinstance(value, bool) or isinstance(value, int | np.integer):
        return str(int(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "n/a"
    return f"{number:.4g}" if abs(number) >= 1000 else f"{number:.3f}"


def plot_metrics_table(
    metrics: Mapping[str, Any],
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """A two-column table figure of ``metrics`` (name -> value); saves to ``path`` if given."""
    if not isinstance(metrics, Mapping) or len(metrics) == 0:
        raise ValueError("metrics must be a non-empty mapping of name -> value")
    cells = [[str(k), _format_value(v)] for k, v in metrics.items()]
    height = 0.25 * (len(cells) + 1) + (0.4 if title else 0.1)
    fig = new_figure((3.6, height), layout="constrained")
    ax = fig.add_subplot()
    ax.axis("off")
    table = ax.table(
        cellText=cells, colLabels=["metric", "value"], loc="center", cellLoc="left", colLoc="left"
    )
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1.0, 1.15)
    for (row, _), cell in table.get_celld().items():
        cell.set_edgecolor("0.8")
        if row == 0:
            cell.set_text_props(fontweight="bold")
            cell.set_facecolor("0.92")
    if title:
        ax.set_title(title, fontsize=10)
    if path is not None:
        save_figure(fig, path)
    return fig
