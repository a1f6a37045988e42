"""The constant-velocity baseline: extrapolated centres on hand-made tracks, and its scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pyro_scalor.eval.baselines import (
    constant_velocities,
    constant_velocity_centers,
    fitted_velocity_centers,
)
from pyro_scalor.eval.horizon import HorizonScore, clear_of_edges, format_horizon_table
from tests.conftest import make_generation


def test_constant_velocity_centers_of_hand_made_tracks():
    boxes = torch.zeros(1, 3, 4, 4)
    ids = torch.tensor([[[7, 9, 5, 4], [9, 0, 5, 7], [7, 9, 5, 4]]])
    valid = torch.zeros(1, 3, 4, dtype=torch.bool)
    # id 7: centres (1, 1), (3, 2), (5, 3); in slot 3 at frame 1
    boxes[0, 0, 0] = torch.tensor([0.0, 0.0, 2.0, 2.0])
    boxes[0, 1, 3] = torch.tensor([2.0, 1.0, 4.0, 3.0])
    boxes[0, 2, 0] = torch.tensor([4.0, 2.0, 6.0, 4.0])
    valid[0, :, 0] = valid[0, 1, 3] = True
    valid[0, 1, 0] = False  # id 9 sits in slot 0 at frame 1, absent
    # id 9: seen only at the last observed frame, centre (12, 11)
    boxes[0, 2, 1] = torch.tensor([10.0, 10.0, 14.0, 12.0])
    valid[0, 2, 1] = True
    # id 5: centre (21, 21) at frame 0, absent at frame 1, (25, 21) at frame 2
    boxes[0, 0, 2] = torch.tensor([20.0, 20.0, 22.0, 22.0])
    boxes[0, 2, 2] = torch.tensor([24.0, 20.0, 26.0, 22.0])
    valid[0, 0, 2] = valid[0, 2, 2] = True
    # slot 3 (id 4) absent at the last observed frame: no extrapolation
    boxes[0, 2, 3] = torch.tensor([40.0, 40.0, 44.0, 44.0])
    vel = constant_velocities(boxes, ids, valid, observe=3)
    np.testing.assert_allclose(vel[0, :3], [[2.0, 1.0], [0.0, 0.0], [2.0, 0.0]])
    assert np.isnan(vel[0, 3]).all()
    got = constant_velocity_centers(boxes, ids, valid, observe=3, horizon=3)
    assert got.shape == (1, 4, 3, 2)
    np.testing.assert_allclose(got[0, 0], [[7.0, 4.0], [9.0, 5.0], [11.0, 6.0]])
    np.testing.assert_allclose(got[0, 1], [[12.0, 11.0]] * 3)  # stands still
    np.testing.assert_allclose(got[0, 2], [[27.0, 21.0], [29.0, 21.0], [31.0, 21.0]])
    assert np.isnan(got[0, 3]).all()
    # observing 2 frames: id 7 is in slot 3 at frame 1, in slot 0 before; id 5 was absent
    two = constant_velocities(boxes, ids, valid, observe=2)
    np.testing.assert_allclose(two[0, 3], [2.0, 1.0])
    assert np.isnan(two[0, :3]).all()
    np.testing.assert_allclose(constant_velocities(boxes, ids, valid, observe=1)[0, 0], [0, 0])
    with pytest.raises(ValueError, match="observe must be in 1..3"):
        constant_velocities(boxes, ids, valid, observe=4)


def test_fitted_velocity_centers_of_hand_made_tracks():
    # one track (id 3) with noisy centres x = 1, 4, 5, 8 at frames 0..3 (y = 10 throughout) and,
    # at the last frame only, another track (id 8) at centre (30, 30)
    boxes = torch.zeros(1, 4, 2, 4)
    ids = torch.tensor([[[3, 8], [3, 8], [3, 8], [3, 8]]])
    valid = torch.zeros(1, 4, 2, dtype=torch.bool)
    for t, x in enumerate([1.0, 4.0, 5.0, 8.0]):
        boxes[0, t, 0] = torch.tensor([x - 1, 9.0, x + 1, 11.0])
    valid[0, :, 0] = True
    boxes[0, 3, 1] = torch.tensor([29.0, 29.0, 31.0, 31.0])
    valid[0, 3, 1] = True
    got = fitted_velocity_centers(boxes, ids, valid, observe=4, horizon=2)
    # least squares through (0, 1), (1, 4), (2, 5), (3, 8): slope 2.2, intercept 1.2
    np.testing.assert_allclose(got[0, 0], [[1.2 + 2.2 * 4, 10.0], [1.2 + 2.2 * 5, 10.0]])
    np.testing.assert_allclose(got[0, 1], [[30.0, 30.0]] * 2)  # seen once: stands still
    # observing 3 frames: a fit to (0, 1), (1, 4), (2, 5): slope 2, intercept 4/3
    got = fitted_velocity_centers(boxes, ids, valid, observe=3, horizon=1)
    np.testing.assert_allclose(got[0, 0, 0], [4 / 3 + 2 * 3, 10.0])
    assert np.isnan(got[0, 1]).all()  # absent at the last observed frame


def _scene(size: int = 8):
    """Ground truth of 5 frames (A moves by (2, 1), B by (3, 0) px per frame, C never visible)
    and a generation of ``size`` px frames that observed 3 frames and keeps every object where
    it was."""
    t = torch.arange(5.0)
    gt = torch.zeros(1, 5, 3, 4)
    gt[0, :, 0] = torch.stack([2 * t, t, 2 * t + 4, t + 4], -1)  # centre (2t + 2, t + 2)
    gt[0, :, 1] = torch.stack([20 + 3 * t, 20 + 0 * t, 24 + 3 * t, 24 + 0 * t], -1)  # (22+3t, 22)
    gt[0, :, 2] = torch.tensor([0.0, 0.0, 30.0, 30.0])
    visible = torch.tensor([[[True, True, False]] * 5])
    boxes = torch.zeros(1, 5, 3, 4)
    boxes[0, :3, 0] = gt[0, :3, 0]
    boxes[0, 3:, 0] = gt[0, 2, 0]
    boxes[0, 2:, 1] = gt[0, 2, 1]
    boxes[0, :, 2] = torch.tensor([0.0, 0.0, 30.0, 30.0])
    valid = torch.zeros(1, 5, 3, dtype=torch.bool)
    valid[0, :, 0] = True
    valid[0, 2:4, 1] = True  # B's track: seen once when observed, lost at the last frame
    frames = torch.zeros(1, 5, 3, size, size)
    gen = make_generation(frames, boxes, torch.tensor([1, 2, 3]).expand(1, 5, 3), valid, 3)
    return gen, gt, visible, frames


def test_horizon_score_reports_constant_velocity_beside_standing_still():
    gen, gt, visible, real = _scene()
    score = HorizonScore(observe=3, compared=2)
    score.add(gen, gt, visible, real, cv_frames=real[:, 3:] + 0.1)
    s = score.summary()
    assert s["matched_objects"] == 2 and s["gt_objects_last_observed"] == 2
    assert s["center_count"] == [2, 1] and s["tracks_lost"] == [0, 1]
    assert s["tracks_lost_share"] == [0.0, 0.5]
    # step 1: A at (8, 5) imagined at (6, 4); B at (31, 22) imagined at (28, 22)
    # step 2: A at (10, 6) imagined at (6, 4); B's track is lost
    assert s["center_error_px"] == pytest.approx([(math.sqrt(5) + 3) / 2, math.sqrt(20)])
    # the median of two errors is their mean; of one, that one
    assert s["center_error_median_px"] == pytest.approx(s["center_error_px"])
    score.errors[0].append(50.0)  # a track that followed another object: the median holds
    assert score.summary()["center_error_median_px"][0] == pytest.approx(3.0)
    assert s["static_center_error_px"] == pytest.approx(s["center_error_px"])
    # A extrapolated exactly; B seen once stands still (3 px behind at step 1)
    assert s["cv_center_error_px"] == pytest.approx([1.5, 0.0])
    assert s["cv_pixel_mse"] == pytest.approx([0.01, 0.01])
    assert s["copy_last_pixel_mse"] == [0.0, 0.0]
    table = format_horizon_table(s)
    assert "const-v px" in table and "50.0" in table


def test_horizon_score_fits_the_true_boxes_and_scores_objects_clear_of_the_edges_apart():
    gen, gt, visible, real = _scene(size=40)
    score = HorizonScore(observe=3, compared=2)
    score.add(gen, gt, visible, real)
    s = score.summary()
    # both true objects move in straight lines: the line through their true boxes is exact
    assert s["true_fitted_center_error_px"] == pytest.approx([0.0, 0.0])
    # A's box touches the view's corner at frame 0, so only B (clear of the edges of the 40 px
    # view through frame 4) counts in view: 3 px behind at step 1, its track lost at step 2
    view = s["in_view"]
    assert view["center_count"] == [1, 0]
    assert view["center_error_px"][0] == pytest.approx(3.0) and np.isnan(view["center_error_px"][1])
    assert view["cv_center_error_px"][0] == pytest.approx(3.0)  # seen once: stands still
    assert view["true_fitted_center_error_px"][0] == pytest.approx(0.0)
    assert "clear of the view's edges" in format_horizon_table(s)
    # in an 8 px view every box crosses an edge: no pair is in view
    score = HorizonScore(observe=3, compared=2)
    score.add(*_scene())
    assert score.summary()["in_view"]["center_count"] == [0, 0]


def test_clear_of_edges_needs_every_side_inside_the_view():
    boxes = np.array([[0.0, 5, 4, 9], [1, 1, 10, 10], [2, 2, 5, 12], [3, 3, 6, 6]])
    visible = np.array([True, True, True, False])
    np.testing.assert_array_equal(
        clear_of_edges(boxes, visible, 12, 10), [False, False, False, False]
    )
    np.testing.assert_array_equal(
        clear_of_edges(boxes, visible, 13, 11), [False, True, True, False]
    )


def test_horizon_score_without_rendered_baseline_reports_nan():
    gen, gt, visible, real = _scene()
    score = HorizonScore(observe=3, compared=2)
    score.add(gen, gt, visible, real)
    s = score.summary()
    assert all(np.isnan(v) for v in s["cv_pixel_mse"])
    assert s["cv_center_error_px"] == pytest.approx([1.5, 0.0])
