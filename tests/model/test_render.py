"""Compositing (the paper's Algorithm 3) on hand-made layers."""

from __future__ import annotations

import torch

from pyro_scalor.model.render import composite, object_layers

BG = torch.tensor([0.1, 0.2, 0.3])
RED = torch.tensor([0.9, 0.0, 0.0])
BLUE = torch.tensor([0.0, 0.0, 0.8])


def layers(colours, squares, size: int = 16):
    """rgb (K, 3, H, W) of constant colours, alpha (K, 1, H, W) opaque on the given squares."""
    k = len(colours)
    rgb = torch.stack([c[:, None, None].expand(3, size, size) for c in colours])
    alpha = torch.zeros(k, 1, size, size)
    for i, (y0, y1, x0, x1) in enumerate(squares):
        alpha[i, :, y0:y1, x0:x1] = 1.0
    return rgb, alpha


def background(size: int = 16):
    return BG[:, None, None].expand(3, size, size)


def sig(x: float) -> float:
    return float(torch.sigmoid(torch.tensor(x)))


def test_single_opaque_object_over_background():
    rgb, alpha = layers([RED], [(4, 10, 2, 8)])
    frame, fg, mask = composite(rgb, alpha, torch.ones(1), torch.zeros(1, 1), background())
    assert frame.shape == (3, 16, 16) and fg.shape == (3, 16, 16) and mask.shape == (1, 16, 16)
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[4:10, 2:8] = True
    torch.testing.assert_close(frame[:, inside], RED[:, None].expand(3, 36), atol=1e-4, rtol=0)
    torch.testing.assert_close(frame[:, ~inside], BG[:, None].expand(3, 220))
    assert (mask[0, inside] == 1).all() and (mask[0, ~inside] == 0).all()
    assert (fg[:, ~inside] == 0).all()


def test_half_transparent_object_mixes_with_background():
    rgb, alpha = layers([RED], [(0, 16, 0, 16)])
    frame, _, mask = composite(rgb, alpha * 0.5, torch.ones(1), torch.zeros(1, 1), background())
    # gamma = w / (w + eps) with w = 0.5 * sigmoid(0) = 0.25: fg = gamma * 0.5 * rgb
    gamma = 0.25 / (0.25 + 1e-5)
    expected = gamma * 0.5 * RED + 0.5 * BG
    torch.testing.assert_close(frame[:, 7, 7], expected)
    torch.testing.assert_close(mask, torch.full((1, 16, 16), 0.5))


def test_lower_depth_dominates_overlapping_objects():
    rgb, alpha = layers([RED, BLUE], [(2, 12, 2, 12), (6, 16, 6, 16)])
    pres = torch.ones(2)
    for d_red, d_blue in ((-2.0, 2.0), (2.0, -2.0)):
        depth = torch.tensor([[d_red], [d_blue]])
        frame, _, mask = composite(rgb, alpha, pres, depth, background())
        w_red, w_blue = sig(-d_red), sig(-d_blue)
        g_red = w_red / (w_red + w_blue + 1e-5)
        g_blue = w_blue / (w_red + w_blue + 1e-5)
        # the overlap [6, 12) x [6, 12): weighted by sigmoid(-depth), no background (mask 1)
        torch.testing.assert_close(frame[:, 8, 8], g_red * RED + g_blue * BLUE)
        assert mask[0, 8, 8] == 1.0
        front = RED if d_red < d_blue else BLUE
        back = BLUE if d_red < d_blue else RED
        assert (frame[:, 8, 8] - front).abs().sum() < (frame[:, 8, 8] - back).abs().sum()
        # where only one object is, it is shown alone, whatever its depth
        torch.testing.assert_close(frame[:, 3, 3], RED, atol=1e-4, rtol=0)
        torch.testing.assert_close(frame[:, 14, 14], BLUE, atol=1e-4, rtol=0)
        torch.testing.assert_close(frame[:, 0, 15], BG)


def test_absent_object_is_invisible():
    rgb, alpha = layers([RED, BLUE], [(2, 12, 2, 12), (6, 16, 6, 16)])
    depth = torch.tensor([[0.0], [-5.0]])  # blue would be in front if it were present
    frame, _, mask = composite(rgb, alpha, torch.tensor([1.0, 0.0]), depth, background())
    alone, _, alone_mask = composite(rgb[:1], alpha[:1], torch.ones(1), depth[:1], background())
    torch.testing.assert_close(frame, alone)
    torch.testing.assert_close(mask, alone_mask)
    torch.testing.assert_close(frame[:, 14, 14], BG)


def test_composite_broadcasts_leading_dims():
    rgb, alpha = layers([RED, BLUE], [(2, 12, 2, 12), (6, 16, 6, 16)])
    rgb = rgb.expand(3, 2, 2, 3, 16, 16)  # (P, B, K, C, H, W)
    alpha = alpha.expand(3, 2, 2, 1, 16, 16)
    pres = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]]).expand(3, 2, 2)
    depth = torch.zeros(3, 2, 2, 1)
    frame, fg, mask = composite(rgb, alpha, pres, depth, background().expand(2, 3, 16, 16))
    assert frame.shape == (3, 2, 3, 16, 16) and mask.shape == (3, 2, 1, 16, 16)
    torch.testing.assert_close(frame[:, 0, :, 14, 14], BG.expand(3, 3))
    torch.testing.assert_close(frame[:, 1, :, 14, 14], BLUE.expand(3, 3), atol=1e-4, rtol=0)


def test_object_layers_split_rgb_and_alpha_at_the_box():
    glimpse = torch.ones(1, 4, 8, 8) * torch.tensor([0.2, 0.4, 0.6, 1.0])[:, None, None]
    box = torch.tensor([[0.25, 0.25, 0.0, 0.0]])  # pixels [12, 20) of a 32 x 32 frame
    rgb, alpha = object_layers(glimpse, box, 32, 32)
    assert rgb.shape == (1, 3, 32, 32) and alpha.shape == (1, 1, 32, 32)
    torch.testing.assert_close(rgb[0, :, 16, 16], torch.tensor([0.2, 0.4, 0.6]))
    assert alpha[0, 0, 16, 16] == 1.0 and alpha[0, 0, 2, 2] == 0.0


def test_mask_memo_reuses_only_identical_inputs_and_gives_the_same_result():
    """The model reuses the guide's propagated-mask render only for the very same inputs."""
    import pyro
    from pyro.infer import TraceMeanField_ELBO

    from pyro_scalor.api import Scalor
    from pyro_scalor.model.render import MaskMemo, presence_mask

    scalor = Scalor("tiny", seed=0)
    dec = scalor.nets.glimpse_decoder
    what = torch.randn(2, 4, scalor.config.z_what_dim)
    boxes = torch.tensor([0.2, 0.2, 0.0, 0.0]).expand(2, 4, 4).clone()
    pres = torch.ones(2, 4)
    memo = MaskMemo()
    first = presence_mask(dec, what, boxes, pres, 64, 64, memo=memo)
    assert presence_mask(dec, what, boxes, pres, 64, 64, memo=memo) is first
    # a different tensor with equal values, other boxes, or changed weights: rendered again
    assert presence_mask(dec, what.clone(), boxes, pres, 64, 64, memo=memo) is not first
    assert presence_mask(dec, what, boxes * 0.5, pres, 64, 64, memo=memo) is not first
    with torch.no_grad():
        next(dec.parameters()).add_(0.1)
    again = presence_mask(dec, what, boxes, pres, 64, 64, memo=memo)
    assert again is not first and not torch.equal(again, first)
    assert torch.equal(again, presence_mask(dec, what, boxes, pres, 64, 64))
    small = MaskMemo(capacity=1)
    presence_mask(dec, what, boxes, pres, 64, 64, memo=small)
    presence_mask(dec, what, boxes * 0.5, pres, 64, 64, memo=small)
    assert len(small._entries) == 1

    # the loss is the same whether or not the model finds the guide's renders
    video = torch.rand(2, 3, 3, 64, 64)
    pyro.set_rng_seed(3)
    with_memo = TraceMeanField_ELBO().loss(scalor.model, scalor.guide, video)
    scalor.nets.mask_memo.capacity = 0
    pyro.set_rng_seed(3)
    without = TraceMeanField_ELBO().loss(scalor.model, scalor.guide, video)
    assert with_memo == without
