"""Delayed discovery on hand-made tracks: objects visible at t = 0, found at t = 0, 1 or never."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyro_scalor.metrics.discovery_delay import found_by_frame


def _scene():
    # one sequence, 3 frames, 3 true objects: A found at t=0, B found at t=1, C never found
    # (a prediction beside it, IoU below 0.5); D appears at t=1 and is ignored (not visible at 0)
    a, b, c, d = [0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [0, 40, 10, 50]
    gt = np.array([[a, b, c, d]] * 3, dtype=float)[None]  # (1, 3, 4, 4)
    visible = np.array([[[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1]]], dtype=bool)
    beside_c = [46, 46, 56, 56]  # IoU with c: 16 / 184
    pred = np.array(
        [
            [a, beside_c, [0, 0, 0, 0]],
            [a, b, d],
            [a, b, beside_c],
        ],
        dtype=float,
    )[None]
    valid = np.array([[[1, 1, 0], [1, 1, 1], [1, 1, 1]]], dtype=bool)
    return pred, valid, gt, visible


def test_fractions_found_by_each_frame():
    pred, valid, gt, visible = _scene()
    found = found_by_frame(pred, valid, gt, visible, frames=3)
    assert found == pytest.approx([1 / 3, 2 / 3, 2 / 3])


def test_a_match_must_be_one_to_one():
    pred, valid, gt, visible = _scene()
    # at t=1 both predictions sit on A: only one of them can match, B stays unfound
    pred[0, 1, 1] = pred[0, 1, 0]
    assert found_by_frame(pred, valid, gt, visible, frames=2) == pytest.approx([1 / 3, 1 / 3])


def test_frames_beyond_the_video_are_not_reported_and_empty_first_frame_is_nan():
    pred, valid, gt, visible = _scene()
    assert len(found_by_frame(pred, valid, gt, visible, frames=10)) == 3
    visible[:, 0] = False
    assert math.isnan(found_by_frame(pred, valid, gt, visible, frames=1)[0])


def test_bad_shapes_give_one_line_errors():
    pred, valid, gt, visible = _scene()
    with pytest.raises(ValueError, match="same B and T"):
        found_by_frame(pred[:, :2], valid[:, :2], gt, visible)
    with pytest.raises(ValueError, match="frames must be >= 1"):
        found_by_frame(pred, valid, gt, visible, frames=0)
