"""Pictures of videos and tracks: box rasterisation, GIFs, figure grids, trajectories.

Frames are ``(T, H, W, 3)`` floats in [0, 1] (uint8 and torch ``(T, 3, H, W)`` are
accepted too); boxes are pixel ``(x_min, y_min, x_max, y_max)`` with the max exclusive.
Nothing here uses pyplot or changes matplotlib's global state.
"""

from pyro_scalor.viz.colors import color_for_id, colors_for_ids
from pyro_scalor.viz.figures import (
    figure_to_array,
    new_figure,
    plot_metrics_table,
    plot_sequence_grid,
    plot_trajectories,
    save_figure,
)
from pyro_scalor.viz.frames import as_frames, as_image, as_uint8_frames
from pyro_scalor.viz.gif import save_gif
from pyro_scalor.viz.raster import render_boxes_on_frames

__all__ = [
    "as_frames",
    "as_image",
    "as_uint8_frames",
    "color_for_id",
    "colors_for_ids",
    "figure_to_array",
    "new_figure",
    "plot_metrics_table",
    "plot_sequence_grid",
    "plot_trajectories",
    "render_boxes_on_frames",
    "save_figure",
    "save_gif",
]
