"""Prior-sample statistics: counts, speeds and sizes of hand-made boxes, and their distance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pyro_scalor.eval.prior_stats import (
    BINS,
    compare_statistics,
    discovery_rates,
    format_statistics,
    histogram,
    prior_statistics,
    total_variation,
    video_statistics,
)
from tests.conftest import make_generation


def _boxes():
    """One sequence of 3 frames, 3 slots: id 1 a 4x4 box moving by (3, 4) px per frame; id 2
    a 2x8 box (side 4) standing still, present at frames 1 and 2; slot 3 never present."""
    boxes = torch.zeros(1, 3, 3, 4)
    for t in range(3):
        boxes[0, t, 0] = torch.tensor([3.0 * t, 4.0 * t, 3.0 * t + 4, 4.0 * t + 4])
        boxes[0, t, 1] = torch.tensor([10.0, 10.0, 12.0, 18.0])
    boxes[0, :, 2] = torch.tensor([0.0, 0.0, 60.0, 60.0])
    valid = torch.tensor([[[True, False, False], [True, True, False], [True, True, False]]])
    return boxes, valid


def test_video_statistics_of_hand_made_boxes():
    boxes, valid = _boxes()
    stats = video_statistics(boxes, torch.tensor([[1, 2, 3]]), valid)
    np.testing.assert_allclose(stats["objects_per_frame"], [1, 2, 2])
    np.testing.assert_allclose(sorted(stats["speed_px"]), [0.0, 5.0, 5.0])
    np.testing.assert_allclose(stats["size_px"], [4.0] * 5)
    # per-frame ids (as in generated videos): id 2 moves to slot 0 at the last frame
    ids = torch.tensor([[[1, 2, 3], [1, 2, 3], [2, 1, 3]]])
    swapped = boxes.clone()
    swapped[0, 2, [0, 1]] = boxes[0, 2, [1, 0]]
    stats = video_statistics(swapped, ids, valid)
    np.testing.assert_allclose(sorted(stats["speed_px"]), [0.0, 5.0, 5.0])
    with pytest.raises(ValueError, match="disagree"):
        video_statistics(boxes[:, :2], torch.tensor([[1, 2, 3]]), valid)


def test_histogram_and_total_variation():
    edges = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(histogram([0.5, 1.0, 7.0, -1.0], edges), [0.5, 0.25, 0.25])
    # [1, 0, 0] against [0.5, 0.5, 0]: half of 0.5 + 0.5
    assert total_variation([0.2], [0.1, 1.5], edges) == pytest.approx(0.5)
    assert total_variation([0.2], [0.7], edges) == 0.0
    assert math.isnan(total_variation([], [0.7], edges))


def test_compare_statistics_means_ratio_and_distance():
    samples = {"objects_per_frame": [1, 2, 2], "speed_px": [0.0, 5.0, 5.0], "size_px": [4.0]}
    data = {"objects_per_frame": [2, 2, 2, 2], "speed_px": [5.0], "size_px": [6.5, 7.5]}
    out = compare_statistics(samples, data)
    counts = out["objects_per_frame"]
    assert counts["samples_mean"] == pytest.approx(5 / 3) and counts["data_mean"] == 2.0
    assert counts["ratio"] == pytest.approx(5 / 6)
    assert counts["total_variation"] == pytest.approx(1 / 3)  # [0, 1/3, 2/3] vs [0, 0, 1]
    assert out["speed_px"]["total_variation"] == pytest.approx(1 / 3)
    assert out["size_px"]["total_variation"] == pytest.approx(1.0)  # bins [4, 6) and [6, 8)
    assert out["size_px"]["samples_count"] == 1 and out["size_px"]["data_count"] == 2
    assert set(out) == set(BINS)
    assert "objects_per_frame" in format_statistics(out)


def test_prior_statistics_against_a_hand_made_dataset():
    boxes, valid = _boxes()
    frames = torch.zeros(1, 3, 3, 8, 8)
    gen = make_generation(frames, boxes, torch.tensor([1, 2, 3]).expand(1, 3, 3), valid, 0)
    # the data: both objects at all three frames, the same boxes
    data = [
        {"boxes": boxes[0], "ids": torch.tensor([1, 2, 3]), "visible": torch.ones_like(valid[0])}
    ]
    data[0]["visible"][:, 2] = False
    out = prior_statistics(gen, data)
    assert out["objects_per_frame"]["samples_mean"] == pytest.approx(5 / 3)
    assert out["objects_per_frame"]["data_mean"] == 2.0
    assert out["speed_px"]["data_mean"] == pytest.approx(2.5)  # 5, 5, 0, 0
    assert out["speed_px"]["samples_mean"] == pytest.approx(10 / 3)
    # speeds: bin 0 holds 1/3 vs 1/2, bin 5 holds 2/3 vs 1/2
    assert out["speed_px"]["total_variation"] == pytest.approx(1 / 6)
    assert out["size_px"]["total_variation"] == 0.0


def test_discovery_rates_of_hand_made_tracks():
    # frame 0: ids 1, 2 present; frame 1: 1 stays, 5 is new; frame 2: 1, 5 stay, 7 is new
    ids = np.array([[[1, 2, 0], [1, 2, 5], [1, 7, 5]]])
    valid = np.array([[[True, True, False], [True, False, True], [True, True, True]]])
    rates = discovery_rates(ids, valid, num_cells=4)
    assert rates == {"first": 2 / 4, "later": 1 / 4}
    with pytest.raises(ValueError, match=r"\(B, T, K\)"):
        discovery_rates(ids[0], valid[0], 4)
