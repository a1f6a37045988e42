"""Spatial transformer (crop / paste), pixel-box conversions and the BoxCoder."""

from __future__ import annotations

import math

import pytest
import torch

from pyro_scalor.model.geometry import (
    BoxCoder,
    boxes_to_pixels,
    crop,
    grid_centres,
    paste,
    pixels_to_boxes,
)


def smooth_image(channels: int = 3, size: int = 64) -> torch.Tensor:
    """A smooth (C, H, W) image in [0.2, 0.8], different per channel."""
    y, x = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    chans = [
        0.5 + 0.3 * torch.sin(2 * math.pi * (x + 7 * c) / size) * torch.cos(math.pi * y / size)
        for c in range(channels)
    ]
    return torch.stack(chans).float()


def box_at(x0: float, y0: float, x1: float, y1: float, size: int = 64) -> torch.Tensor:
    return pixels_to_boxes(torch.tensor([x0, y0, x1, y1]), size, size)


# ------------------------------------------------------------------------------------------
def test_boxes_to_pixels_hand_computed():
    boxes = torch.tensor(
        [
            [0.5, 0.25, 0.0, 0.0],  # half the width, a quarter of the height, centred
            [0.125, 0.125, 0.125, -0.5],
            [1.0, 1.0, 0.0, 0.0],  # the whole image
        ]
    )
    px = boxes_to_pixels(boxes, 64, 64)
    expected = torch.tensor(
        [[16.0, 24.0, 48.0, 40.0], [32.0, 12.0, 40.0, 20.0], [0.0, 0.0, 64.0, 64.0]]
    )
    torch.testing.assert_close(px, expected)
    # non-square frames: x follows the width, y the height
    torch.testing.assert_close(
        boxes_to_pixels(torch.tensor([0.5, 0.5, 0.0, 0.0]), 32, 64),
        torch.tensor([16.0, 8.0, 48.0, 24.0]),
    )


def test_pixels_and_boxes_are_inverse():
    gen = torch.Generator().manual_seed(0)
    boxes = torch.cat(
        [
            torch.rand(5, 7, 2, generator=gen) * 0.9 + 0.05,
            torch.rand(5, 7, 2, generator=gen) * 2 - 1,
        ],
        -1,
    )
    for h, w in ((64, 64), (48, 80)):
        px = boxes_to_pixels(boxes, h, w)
        assert px.shape == boxes.shape
        assert (px[..., 2] > px[..., 0]).all() and (px[..., 3] > px[..., 1]).all()
        torch.testing.assert_close(pixels_to_boxes(px, h, w), boxes)
        torch.testing.assert_close(boxes_to_pixels(pixels_to_boxes(px, h, w), h, w), px)


# ------------------------------------------------------------------------------------------
def test_crop_and_paste_of_the_whole_image_are_the_identity():
    img = smooth_image()
    full = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    torch.testing.assert_close(crop(img, full, 64)[0], img, atol=1e-5, rtol=0)
    torch.testing.assert_close(paste(img[None], full, 64, 64)[0], img, atol=1e-5, rtol=0)


def test_crop_reads_the_box_content():
    # a constant patch inside the box, something else outside: the glimpse is the constant
    img = torch.zeros(1, 64, 64)
    img[:, 16:48, 8:40] = 0.7
    g = crop(img, box_at(12, 20, 36, 44)[None], 8)
    torch.testing.assert_close(g, torch.full((1, 1, 8, 8), 0.7))
    # a box far outside the image reads zero padding
    outside = torch.tensor([[0.1, 0.1, 3.0, 3.0]])
    assert crop(img + 1, outside, 8).abs().max() == 0


@pytest.mark.parametrize("glimpse", [16, 32])
def test_crop_then_paste_recovers_the_box_content(glimpse):
    img = smooth_image()
    x0, y0, x1, y1 = 16, 8, 48, 40  # a 32 x 32 box
    box = box_at(x0, y0, x1, y1)[None]
    g = crop(img, box, glimpse)
    assert g.shape == (1, 3, glimpse, glimpse)
    back = paste(g, box, 64, 64)[0]
    m = math.ceil((x1 - x0) / glimpse)  # one glimpse pixel, in image pixels
    inside = back[:, y0 + m : y1 - m, x0 + m : x1 - m]
    torch.testing.assert_close(inside, img[:, y0 + m : y1 - m, x0 + m : x1 - m], atol=0.03, rtol=0)
    outside = back.clone()
    outside[:, y0 - m : y1 + m, x0 - m : x1 + m] = 0
    assert outside.abs().max() == 0, "paste must leave everything outside the box at zero"
    # and the box region is really filled (not zero)
    assert inside.min() > 0.15


def test_paste_then_crop_recovers_the_glimpse():
    g = smooth_image(channels=2, size=16)[None]  # (1, 2, 16, 16)
    box = box_at(20, 10, 52, 42)[None]  # 32 x 32 pixels
    layer = paste(g, box, 64, 64)
    assert layer.shape == (1, 2, 64, 64)
    again = crop(layer[0], box, 16)
    torch.testing.assert_close(again[..., 1:-1, 1:-1], g[..., 1:-1, 1:-1], atol=0.03, rtol=0)


def test_crop_broadcasts_leading_dims_like_a_loop():
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(2, 3, 16, 16, generator=gen)  # (B, C, H, W)
    boxes = torch.cat(
        [
            torch.rand(4, 2, 5, 2, generator=gen) * 0.5 + 0.1,
            torch.rand(4, 2, 5, 2, generator=gen) - 0.5,
        ],
        -1,
    )  # (P, B, N, 4): a particle dim that the images lack
    out = crop(images, boxes, 8)
    assert out.shape == (4, 2, 5, 3, 8, 8)
    for p in range(4):
        for b in range(2):
            torch.testing.assert_close(out[p, b], crop(images[b], boxes[p, b], 8))
    glimpses = torch.rand(4, 2, 5, 3, 8, 8, generator=gen)
    layers = paste(glimpses, boxes, 16, 16)
    assert layers.shape == (4, 2, 5, 3, 16, 16)
    torch.testing.assert_close(layers[3, 1], paste(glimpses[3, 1], boxes[3, 1], 16, 16))


# ------------------------------------------------------------------------------------------
def test_grid_centres_are_row_major_cell_centres():
    c = grid_centres(4)
    assert c.shape == (16, 2)
    torch.testing.assert_close(c[0], torch.tensor([-0.75, -0.75]))
    torch.testing.assert_close(c[1], torch.tensor([-0.25, -0.75]))  # (cx, cy): x moves first
    torch.testing.assert_close(c[4], torch.tensor([-0.75, -0.25]))
    torch.testing.assert_close(c[15], torch.tensor([0.75, 0.75]))


@pytest.mark.parametrize("shift", [1.0, 0.5])
def test_discovery_boxes_stay_near_their_cell_and_within_scale_bounds(shift):
    coder = BoxCoder(4, min_scale=0.1, max_scale=0.3, max_shift_cells=shift)
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(3, 2, 16, 4, generator=gen) * 10  # extreme latents saturate the squashes
    boxes, logits = coder.discovery(z)
    assert boxes.shape == (3, 2, 16, 4) and logits.shape == (3, 2, 16, 2)
    torch.testing.assert_close(logits, z[..., :2])
    s, c = boxes[..., :2], boxes[..., 2:]
    assert (s >= 0.1).all() and (s <= 0.3).all()
    cell = 2.0 / 4
    assert ((c - grid_centres(4)).abs() <= shift * cell + 1e-6).all()
    # the extremes are reached: the bounds are tight, not just respected
    assert (c - grid_centres(4)).abs().max() > 0.99 * shift * cell
    # zero latents: the mid scale at the cell centre
    boxes0, _ = coder.discovery(torch.zeros(16, 4))
    torch.testing.assert_close(boxes0[:, :2], torch.full((16, 2), 0.2))
    torch.testing.assert_close(boxes0[:, 2:], grid_centres(4))


def test_propagation_moves_boxes_by_at_most_max_motion():
    coder = BoxCoder(4, min_scale=0.1, max_scale=0.3, max_motion=0.2)
    gen = torch.Generator().manual_seed(0)
    prev_logit = torch.randn(2, 5, 2, generator=gen)
    prev_box = torch.cat(
        [coder._scale(prev_logit), torch.rand(2, 5, 2, generator=gen) * 3 - 1.5], -1
    )
    z = torch.randn(2, 5, 4, generator=gen) * 10
    box, logit = coder.propagation(z, prev_box, prev_logit)
    assert ((box[..., 2:] - prev_box[..., 2:]).abs() <= 0.2 + 1e-6).all()
    assert (box[..., 2:].abs() <= 1.5).all()
    assert (box[..., :2] >= 0.1).all() and (box[..., :2] <= 0.3).all()
    torch.testing.assert_close(box[..., :2], coder._scale(logit))
    # zero change keeps the box exactly
    same, same_logit = coder.propagation(torch.zeros(2, 5, 4), prev_box, prev_logit)
    torch.testing.assert_close(same, prev_box.clamp(-1.5, 1.5))
    torch.testing.assert_close(same_logit, prev_logit)


@pytest.mark.parametrize("lo, hi", [(0.0, 0.3), (0.3, 0.3), (0.4, 0.2), (0.1, 2.5)])
def test_boxcoder_rejects_bad_scale_bounds(lo, hi):
    with pytest.raises(ValueError, match="min_scale"):
        BoxCoder(4, lo, hi)
