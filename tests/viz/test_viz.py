"""Tests for pyro_scalor.viz: rasterised boxes, colours, GIFs and figures."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from pyro_scalor.viz import (
    as_frames,
    as_image,
    color_for_id,
    figure_to_array,
    new_figure,
    plot_metrics_table,
    plot_sequence_grid,
    plot_trajectories,
    render_boxes_on_frames,
    save_gif,
)
from pyro_scalor.viz.figures import MARGIN_COLOR

# ----------------------------------------------------------------------------- helpers


def noisy_frames(t: int = 3, h: int = 16, w: int = 20, seed: int = 0) -> np.ndarray:
    """Dark random frames, so any pixel a drawing changes can be told apart."""
    return np.random.default_rng(seed).uniform(0.0, 0.4, size=(t, h, w, 3)).astype(np.float32)


def upscaled(frames: np.ndarray, scale: int) -> np.ndarray:
    u8 = np.round(frames * 255).astype(np.uint8)
    return u8.repeat(scale, axis=1).repeat(scale, axis=2)


def outline_mask(shape: tuple[int, int], x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Inclusive outline (x0, y0)-(x1, y1), clipped to ``shape``, built pixel by pixel."""
    mask = np.zeros(shape, dtype=bool)
    for y in range(shape[0]):
        for x in range(shape[1]):
            on_rows = y in (y0, y1) and x0 <= x <= x1
            on_cols = x in (x0, x1) and y0 <= y <= y1
            mask[y, x] = on_rows or on_cols
    return mask


def rgb8(track_id: int) -> np.ndarray:
    return np.round(np.asarray(color_for_id(track_id)) * 255).astype(np.uint8)


def sample_tracks(t: int = 4):
    """Two squares moving right on 32x32 frames; the second appears at frame 1."""
    boxes = np.zeros((t, 2, 4))
    for i in range(t):
        boxes[i, 0] = (2 + 2 * i, 4, 10 + 2 * i, 12)
        boxes[i, 1] = (4 + 3 * i, 18, 12 + 3 * i, 26)
    ids = np.array([1, 2])
    valid = np.ones((t, 2), dtype=bool)
    valid[0, 1] = False
    discovered = np.zeros((t, 2), dtype=bool)
    discovered[0, 0] = discovered[1, 1] = True
    frames = noisy_frames(t, 32, 32)
    return frames, boxes, ids, valid, discovered


# ----------------------------------------------------------------------------- frames


def test_as_frames_layouts():
    frames = noisy_frames()
    np.testing.assert_array_equal(as_frames(frames), frames)
    chw = torch.from_numpy(frames).permute(0, 3, 1, 2)
    np.testing.assert_allclose(as_frames(chw), frames)
    np.testing.assert_allclose(as_frames(chw.numpy()), frames)
    u8 = np.round(frames * 255).astype(np.uint8)
    np.testing.assert_allclose(as_frames(u8), u8 / 255.0, atol=1e-6)
    grey = as_frames(frames[..., :1])
    assert grey.shape == frames.shape and (grey[..., 0] == grey[..., 2]).all()
    assert as_frames(frames + 0.62).max() == 1.0  # slight overshoot is clipped
    assert as_image(torch.from_numpy(frames[0]).permute(2, 0, 1)).shape == (16, 20, 3)
    assert as_image(frames[0, ..., 0]).shape == (16, 20, 3)


def test_as_frames_errors():
    with pytest.raises(ValueError, match="one frame.*x\\[None\\]"):
        as_frames(np.zeros((16, 16, 3)))
    with pytest.raises(ValueError, match="no axis of 1 or 3 channels"):
        as_frames(np.zeros((2, 5, 16, 16)))
    with pytest.raises(ValueError, match="divide 8-bit values by 255"):
        as_frames(np.full((1, 4, 4, 3), 200.0))
    with pytest.raises(ValueError, match="NaN"):
        as_frames(np.full((1, 4, 4, 3), np.nan))
    with pytest.raises(TypeError, match="dtype int64"):
        as_frames(np.zeros((1, 4, 4, 3), dtype=np.int64))


# ----------------------------------------------------------------------------- colours


def test_color_for_id():
    palette = [color_for_id(i) for i in range(1, 21)]
    assert len(set(palette)) == 20
    assert color_for_id(0) == color_for_id(-7) == (0.6, 0.6, 0.6)
    assert (0.6, 0.6, 0.6) not in palette and (1.0, 1.0, 1.0) not in palette
    assert color_for_id(np.int64(3)) == color_for_id(3) == color_for_id(3.0)
    big = [color_for_id(i) for i in range(21, 200)]
    assert len(set(big)) == len(big)
    assert all(0.0 <= c <= 1.0 for rgb in palette + big for c in rgb)
    assert color_for_id(123456) == color_for_id(123456)
    with pytest.raises(TypeError, match="integer"):
        color_for_id(1.5)
    with pytest.raises(TypeError, match="integer"):
        color_for_id(True)


# ----------------------------------------------------------------------------- rasterising


def test_render_shape_dtype_and_untouched_frames():
    frames = noisy_frames()
    out = render_boxes_on_frames(frames, np.zeros((3, 2, 4)), [1, 2], np.zeros((3, 2), bool))
    assert out.shape == (3, 64, 80, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, upscaled(frames, 4))
    out2 = render_boxes_on_frames(frames, np.zeros((3, 2, 4)), [1, 2], None, scale=2)
    assert out2.shape == (3, 32, 40, 3)


@pytest.mark.parametrize(
    ("box", "scale", "expected"),
    [
        ((2.0, 3.0, 6.0, 8.0), 4, (8, 12, 23, 31)),  # integer box, max exclusive
        ((2.3, 3.5, 6.2, 8.0), 4, (9, 14, 24, 31)),  # fractional box
        ((5.0, 5.0, 5.2, 9.0), 1, (5, 5, 5, 8)),  # thinner than a pixel: still one column
        ((-2.0, -2.0, 3.0, 3.0), 2, (-4, -4, 5, 5)),  # partly outside: top/left not drawn
        ((17.0, 10.0, 25.0, 20.0), 2, (34, 20, 49, 39)),  # partly outside on the right
    ],
)
def test_outline_pixels_carry_id_colour_exactly(box, scale, expected):
    frames = noisy_frames(t=2)
    boxes = np.zeros((2, 1, 4))
    boxes[1, 0] = box
    valid = np.array([[False], [True]])
    out = render_boxes_on_frames(frames, boxes, np.array([[5], [5]]), valid, scale=scale)
    base = upscaled(frames, scale)
    np.testing.assert_array_equal(out[0], base[0])  # invalid box not drawn
    mask = outline_mask(out.shape[1:3], *expected)
    changed = (out[1] != base[1]).any(axis=-1)
    np.testing.assert_array_equal(changed, mask)
    assert (out[1][mask] == rgb8(5)).all()


def test_boxes_entirely_outside_are_skipped():
    frames = noisy_frames(t=1)
    out = render_boxes_on_frames(frames, [[[30.0, 30.0, 40.0, 40.0]]], [1], [[True]], scale=1)
    np.testing.assert_array_equal(out, upscaled(frames, 1))


def test_each_box_gets_its_id_colour_and_ids_broadcast():
    frames = noisy_frames(t=2)
    boxes = np.array([[[1, 1, 5, 5], [8, 8, 14, 14]]] * 2, dtype=float)
    valid = np.ones((2, 2), bool)
    a = render_boxes_on_frames(frames, boxes, np.array([3, 11]), valid, scale=2)
    b = render_boxes_on_frames(frames, boxes, np.array([[3, 11], [3, 11]]), valid, scale=2)
    np.testing.assert_array_equal(a, b)
    assert (a[0, 2, 2] == rgb8(3)).all() and (a[0, 16, 20] == rgb8(11)).all()
    torch_frames = torch.from_numpy(frames).permute(0, 3, 1, 2)
    c = render_boxes_on_frames(torch_frames, torch.from_numpy(boxes), [3, 11], valid, scale=2)
    np.testing.assert_array_equal(a, c)


def test_thickness():
    frames = noisy_frames(t=1)
    box = [[[2.0, 2.0, 8.0, 8.0]]]
    out = render_boxes_on_frames(frames, box, [1], [[True]], scale=2, thickness=2)
    base = upscaled(frames, 2)
    mask = outline_mask((32, 40), 4, 4, 15, 15) | outline_mask((32, 40), 5, 5, 14, 14)
    np.testing.assert_array_equal((out[0] != base[0]).any(-1), mask)


def test_discovered_marker_differs_from_propagated():
    frames = noisy_frames(t=2, h=24, w=24)
    boxes = np.array([[[6.0, 6.0, 16.0, 16.0]]] * 2)
    valid = np.ones((2, 1), bool)
    discovered = np.array([[True], [False]])
    plain = render_boxes_on_frames(frames, boxes, [1], valid)
    marked = render_boxes_on_frames(frames, boxes, [1], valid, discovered=discovered)
    # the propagated frame is drawn exactly as without the flag
    np.testing.assert_array_equal(marked[1], plain[1])
    diff = (marked[0] != plain[0]).any(-1)
    assert diff.any()
    ys, xs = np.nonzero(diff)
    # the marker sits on the top-left corner (24, 24) and is small
    assert abs(ys.mean() - 24) <= 1 and abs(xs.mean() - 24) <= 1
    assert ys.max() - ys.min() <= 10 and xs.max() - xs.min() <= 10
    white = (marked[0] == 255).all(-1) & diff
    black = (marked[0] == 0).all(-1) & diff
    assert white.sum() > 4 and black.sum() > 4
    # far from the corner the outline is untouched
    np.testing.assert_array_equal(marked[0, 63, 30:60], plain[0, 63, 30:60])
    assert (marked[0, 63, 30:60] == rgb8(1)).all()


def test_marker_of_box_partly_outside_is_moved_into_the_frame():
    frames = noisy_frames(t=1)
    out = render_boxes_on_frames(
        frames, [[[-5.0, -5.0, 4.0, 4.0]]], [1], [[True]], discovered=[[True]], scale=2
    )
    assert (out[0, :4, :4] == 255).all(-1).any()


def test_render_validation_errors():
    frames = noisy_frames()
    boxes = np.zeros((3, 2, 4))
    valid = np.ones((3, 2), bool)
    with pytest.raises(ValueError, match=r"boxes cover 2 frames.*T = 3"):
        render_boxes_on_frames(frames, boxes[:2], [1, 2], valid[:2])
    with pytest.raises(ValueError, match=r"boxes must have shape \(T, N, 4\)"):
        render_boxes_on_frames(frames, boxes[..., :3], [1, 2], valid)
    with pytest.raises(ValueError, match=r"ids must have shape \(T, N\) = \(3, 2\) or \(N\)"):
        render_boxes_on_frames(frames, boxes, [1, 2, 3], valid)
    with pytest.raises(ValueError, match=r"valid must have shape \(T, N\) = \(3, 2\)"):
        render_boxes_on_frames(frames, boxes, [1, 2], valid[:, :1])
    with pytest.raises(ValueError, match=r"discovered must have shape \(T, N\)"):
        render_boxes_on_frames(frames, boxes, [1, 2], valid, discovered=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="scale must be a positive integer"):
        render_boxes_on_frames(frames, boxes, [1, 2], valid, scale=0)
    with pytest.raises(ValueError, match="scale must be a positive integer"):
        render_boxes_on_frames(frames, boxes, [1, 2], valid, scale=1.5)
    with pytest.raises(ValueError, match="NaN or infinite"):
        render_boxes_on_frames(frames, np.full((3, 2, 4), np.nan), [1, 2], valid)


# ----------------------------------------------------------------------------- GIF


def test_gif_round_trip(tmp_path):
    frames = np.stack([np.full((12, 20, 3), 40 * i, dtype=np.uint8) for i in range(5)])
    frames[:, 2:5, 3:9] = (255, 0, 0)
    path = save_gif(frames, tmp_path / "deep" / "er" / "seq.gif", fps=4)
    assert path.exists() and path.parent.name == "er"
    with Image.open(path) as im:
        assert im.n_frames == 5
        assert im.size == (20, 12)
        assert im.info["duration"] == 250
        assert im.info["loop"] == 0
        im.seek(4)
        last = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(last[8, 15], [160, 160, 160])
    np.testing.assert_array_equal(last[3, 4], [255, 0, 0])


def test_gif_from_float_and_torch(tmp_path):
    frames = noisy_frames(t=3)
    path = save_gif(torch.from_numpy(frames).permute(0, 3, 1, 2), str(tmp_path / "f.gif"), fps=10)
    with Image.open(path) as im:
        assert im.n_frames == 3 and im.size == (20, 16) and im.info["duration"] == 100
    with pytest.raises(ValueError, match="fps must be positive"):
        save_gif(frames, tmp_path / "g.gif", fps=0)


# ----------------------------------------------------------------------------- figures


def _rectangles(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def _white_markers(ax) -> int:
    return sum(
        len(line.get_xdata())
        for line in ax.lines
        if line.get_marker() == "o" and line.get_markerfacecolor() in ("white", (1.0, 1.0, 1.0))
    )


def test_sequence_grid_saves_png_with_expected_axes(tmp_path):
    frames, boxes, ids, valid, discovered = sample_tracks()
    rows = {"original": frames, "reconstruction": frames * 0.5, "boxes": frames, "extra": frames}
    backend = matplotlib.get_backend()
    fig = plot_sequence_grid(
        rows,
        path=tmp_path / "grid" / "g.png",
        boxes=boxes,
        ids=ids,
        valid=valid,
        discovered=discovered,
        title="demo",
    )
    assert matplotlib.get_backend() == backend
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4 * 4
    with Image.open(tmp_path / "grid" / "g.png") as im:
        assert im.format == "PNG"
        w_in, h_in = fig.get_size_inches()
        assert abs(im.size[0] - w_in * 120) <= 2 and abs(im.size[1] - h_in * 120) <= 2
    axes = np.array(fig.axes).reshape(4, 4)
    assert [axes[r, 0].get_ylabel() for r in range(4)] == list(rows)
    assert [axes[0, t].get_title() for t in range(4)] == ["t=0", "t=1", "t=2", "t=3"]
    for t in range(4):
        assert len(_rectangles(axes[2, t])) == valid[t].sum()  # boxes only on the "boxes" row
        assert all(len(_rectangles(axes[r, t])) == 0 for r in (0, 1, 3))
        assert _white_markers(axes[2, t]) == discovered[t].sum()
    rect = _rectangles(axes[2, 0])[0]
    assert rect.get_xy() == (2, 4) and rect.get_width() == 8 and rect.get_height() == 8
    np.testing.assert_allclose(rect.get_edgecolor()[:3], color_for_id(1))
    legend_text = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "discovered" in legend_text and "propagated" in legend_text
    assert fig._suptitle.get_text() == "demo"


def test_sequence_grid_boxes_on_last_row_without_boxes_row():
    frames, boxes, ids, valid, _ = sample_tracks()
    fig = plot_sequence_grid({"a": frames, "b": frames}, boxes=boxes, ids=ids, valid=valid)
    axes = np.array(fig.axes).reshape(2, 4)
    assert len(_rectangles(axes[1, 1])) == 2 and len(_rectangles(axes[0, 1])) == 0
    assert _white_markers(axes[1, 1]) == 0
    legend_text = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "discovered" not in legend_text


def test_sequence_grid_margin_frames():
    frames = noisy_frames(t=5)
    fig = plot_sequence_grid(
        {"x": frames, "y": frames}, margin_frames=[3, 4], margin_label="generated"
    )
    axes = np.array(fig.axes).reshape(2, 5)
    red = matplotlib.colors.to_rgba(MARGIN_COLOR)
    for r in range(2):
        for t in range(5):
            spine = axes[r, t].spines["left"]
            if t >= 3:
                assert spine.get_edgecolor() == red and spine.get_linewidth() >= 3
            else:
                assert spine.get_edgecolor() != red and spine.get_linewidth() < 1
    assert fig.legends and "generated" in fig.legends[0].get_texts()[0].get_text()
    fig_no_margin = plot_sequence_grid({"x": frames})
    assert not fig_no_margin.legends
    a = figure_to_array(fig_no_margin)
    assert not ((a[..., 0] > 200) & (a[..., 1] < 60) & (a[..., 2] < 60)).any()
    b = figure_to_array(plot_sequence_grid({"x": frames}, margin_frames=range(5)))
    assert ((b[..., 0] > 200) & (b[..., 1] < 60) & (b[..., 2] < 60)).sum() > 100


def test_sequence_grid_validation_errors():
    frames, boxes, ids, valid, _ = sample_tracks()
    with pytest.raises(ValueError, match="non-empty mapping"):
        plot_sequence_grid({})
    with pytest.raises(ValueError, match=r"rows\['b'\] has 3 frames but rows\['a'\] has 4"):
        plot_sequence_grid({"a": frames, "b": frames[:3]})
    with pytest.raises(ValueError, match=r"boxes cover 3 frames.*T = 4"):
        plot_sequence_grid({"a": frames}, boxes=boxes[:3], ids=ids, valid=valid[:3])
    with pytest.raises(ValueError, match="need boxes"):
        plot_sequence_grid({"a": frames}, ids=ids)
    with pytest.raises(ValueError, match=r"margin_frames must hold frame indices in 0..3"):
        plot_sequence_grid({"a": frames}, margin_frames=[4])
    with pytest.raises(ValueError, match=r"rows\['a'\] has shape"):
        plot_sequence_grid({"a": frames[0]})


def test_plot_trajectories():
    frames, boxes, ids, valid, _ = sample_tracks()
    fig = plot_trajectories(frames[-1], boxes, ids, valid)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    tracks = [line for line in ax.lines if line.get_label().startswith("track ")]
    assert len(tracks) == 2
    xs = tracks[1].get_xdata()
    assert math.isnan(xs[0]) and xs[1] == pytest.approx(11.0)  # track 2 starts at frame 1
    np.testing.assert_allclose(tracks[0].get_color(), color_for_id(1))
    own = new_figure((3, 3))
    ax2 = own.add_subplot()
    assert plot_trajectories(None, boxes, ids, valid, ax=ax2) is ax2
    assert ax2.get_ylim()[0] > ax2.get_ylim()[1]  # image coordinates: y grows downwards
    with pytest.raises(ValueError, match=r"ids must have shape"):
        plot_trajectories(None, boxes, [1, 2, 3], valid)


def test_figure_to_array_and_metrics_table(tmp_path):
    fig = plot_metrics_table(
        {"mota": 0.91234, "id_switches": 3, "idf1": float("nan")},
        path=tmp_path / "t.png",
        title="metrics",
    )
    arr = figure_to_array(fig)
    w_in, h_in = fig.get_size_inches()
    assert arr.dtype == np.uint8 and arr.shape == (round(h_in * fig.dpi), round(w_in * fig.dpi), 3)
    cells = fig.axes[0].tables[0].get_celld().values()
    texts = {cell.get_text().get_text() for cell in cells}
    assert {"0.912", "3", "n/a"} <= texts
    assert (tmp_path / "t.png").exists()
    with pytest.raises(TypeError, match="matplotlib Figure"):
        figure_to_array(np.zeros((3, 3)))
