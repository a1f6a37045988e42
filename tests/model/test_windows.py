"""Windowed rendering, chunked glimpse networks and the merge index: each must give exactly what
the plain computation gives (up to the order of floating-point sums)."""

from __future__ import annotations

import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO

from pyro_scalor.api import Scalor
from pyro_scalor.model import guide as guide_module
from pyro_scalor.model import nets as nets_module
from pyro_scalor.model.config import get_model_config
from pyro_scalor.model.render import composite, object_layers, presence_mask, render
from pyro_scalor.model.slots import merge_index, take
from pyro_scalor.model.windows import Windows, window_size
from tests.conftest import make_video


def random_boxes(b: int, k: int, max_scale: float, seed: int = 0) -> torch.Tensor:
    """Boxes (b, k, 4) with scales up to ``max_scale``, centres also outside the view."""
    g = torch.Generator().manual_seed(seed)
    scale = 0.02 + (max_scale - 0.02) * torch.rand(b, k, 2, generator=g)
    centre = torch.rand(b, k, 2, generator=g) * 3.2 - 1.6
    return torch.cat([scale, centre], -1)


@pytest.mark.parametrize(
    "max_scale, glimpse, size, expected",
    # half-width max_scale * (1 + 1/g) * size / 2 rounded up, doubled, plus 2
    [(0.25, 16, 64, 20), (0.22, 16, 64, 18), (0.25, 8, 32, 12), (1.0, 16, 64, 70)],
)
def test_window_size_by_hand(max_scale, glimpse, size, expected):
    assert window_size(max_scale, glimpse, size) == expected


def test_window_pixels_line_up_with_the_frame():
    # a box centred at x = 0 (pixel 32 of 64) gets a window starting 10 pixels left of centre
    boxes = torch.tensor([[[0.25, 0.25, 0.0, -1.0]]])
    w = Windows.at(boxes, 20, 64, 64)
    assert torch.allclose(w.u[0, 0], torch.tensor((2 * 22 + 1) / 64 - 1))
    assert torch.allclose(w.v[0, 0], torch.tensor((2 * -10 + 1) / 64 - 1))
    # its first pixel sits at row -10 + 20 (padding), column 22 + 20 of the 104-wide padded frame
    assert int(w.index[0, 0]) == (-10 + 20) * 104 + (22 + 20)


@pytest.mark.parametrize("max_scale", [0.22, 0.25])
def test_render_equals_the_full_frame_composite_with_gradients(max_scale):
    b, k, g = 3, 24, 16
    glimpses = torch.rand(b, k, 4, g, g, requires_grad=True)
    boxes = random_boxes(b, k, max_scale).requires_grad_()
    pres, depth = torch.rand(b, k), torch.randn(b, k, 1)
    bg = torch.rand(b, 3, 64, 64)
    full = composite(*object_layers(glimpses, boxes, 64, 64), pres, depth, bg)
    windowed = render(glimpses, boxes, pres, depth, bg, max_scale)
    for a, w in zip(full, windowed):
        torch.testing.assert_close(w, a, atol=1e-5, rtol=1e-5)
    weights = torch.randn(b, 3, 64, 64)
    grads_full = torch.autograd.grad((full[0] * weights).sum(), [glimpses, boxes])
    grads_win = torch.autograd.grad((windowed[0] * weights).sum(), [glimpses, boxes])
    for a, w in zip(grads_full, grads_win):
        torch.testing.assert_close(w, a, atol=1e-3, rtol=1e-4)


def test_render_keeps_leading_dims_and_broadcasts_the_background():
    glimpses = torch.rand(2, 3, 5, 4, 8, 8)  # particles, batch, K
    boxes = random_boxes(6, 5, 0.25).view(2, 3, 5, 4)
    pres, depth, bg = torch.rand(2, 3, 5), torch.randn(2, 3, 5, 1), torch.rand(3, 3, 32, 32)
    frame, fg, mask = render(glimpses, boxes, pres, depth, bg, 0.25)
    assert frame.shape == (2, 3, 3, 32, 32) and mask.shape == (2, 3, 1, 32, 32)
    full = composite(*object_layers(glimpses, boxes, 32, 32), pres, depth, bg)
    torch.testing.assert_close(frame, full[0], atol=1e-5, rtol=1e-5)


def test_windowed_presence_mask_equals_the_full_one():
    ramp = torch.linspace(-2, 2, 16)

    def decoder(what: torch.Tensor) -> torch.Tensor:  # (N, 6) to (N, 4, 16, 16) in (0, 1)
        return torch.sigmoid(what[:, :4, None, None] * (ramp[:, None] + ramp[None, :]))

    what = torch.randn(2, 12, 6)
    boxes, pres = random_boxes(2, 12, 0.22), torch.rand(2, 12)
    full = presence_mask(decoder, what, boxes, pres, 64, 64)
    windowed = presence_mask(decoder, what, boxes, pres, 64, 64, max_scale=0.22)
    torch.testing.assert_close(windowed, full, atol=1e-6, rtol=1e-6)
    alpha = decoder(what.view(-1, 6)).view(2, 12, 4, 16, 16)[:, :, -1:]
    given = presence_mask(decoder, what, boxes, pres, 64, 64, max_scale=0.22, alpha=alpha)
    torch.testing.assert_close(given, full, atol=1e-6, rtol=1e-6)


def test_glimpse_networks_in_chunks_give_the_whole_batch_result(monkeypatch):
    nets = Scalor(get_model_config("tiny"), seed=0).nets
    what = torch.randn(10, nets.cfg.z_what_dim)
    glimpses = torch.rand(10, 3, nets.cfg.encoder_glimpse_size, nets.cfg.encoder_glimpse_size)
    whole_dec, whole_enc = nets.glimpse_decoder(what), nets.glimpse_encoder(glimpses)
    monkeypatch.setattr(nets_module, "CPU_GLIMPSE_CHUNK", 3)
    torch.testing.assert_close(nets.glimpse_decoder(what), whole_dec)
    for a, b in zip(nets.glimpse_encoder(glimpses), whole_enc):
        torch.testing.assert_close(a, b)


def test_merge_index_by_hand():
    prop = torch.tensor([0.9, 0.1, 0.0])
    disc = torch.tensor([0.8, 0.95])
    # tracks: the present track keeps slot 0; the free slots (presence 0.0, then 0.1) take the
    # proposals most present first: slot 2 <- proposal 1 (candidate 4), slot 1 <- proposal 0
    index, dropped = merge_index(prop, disc, 3, "tracks")
    assert index.tolist() == [0, 3, 4] and float(dropped) == 0.0
    index, dropped = merge_index(prop, disc, 2, "topk")
    assert index.tolist() == [4, 0] and float(dropped) == 1.0  # proposal 0 (0.8) left out
    values = take(torch.tensor([10.0, 11.0, 12.0]), torch.tensor([20.0, 21.0]), index)
    assert values.tolist() == [21.0, 10.0]


def test_guide_reusing_decoded_alphas_gives_the_same_loss(monkeypatch):
    cfg = get_model_config("tiny").replace(rejection_rule="mask", max_objects=6)
    video = make_video(b=2, t=3, size=cfg.image_size)

    def loss() -> float:
        scalor = Scalor(cfg, seed=0)
        pyro.set_rng_seed(3)
        kw = {"temperature": 0.7, "disc_pres_prior": 0.3}
        elbo = Trace_ELBO().differentiable_loss(scalor.model, scalor.guide, video, **kw)
        return float(elbo.detach())

    reused = loss()
    monkeypatch.setattr(guide_module, "capturing", lambda: True)  # the path that decodes again
    assert reused == pytest.approx(loss(), rel=1e-6)
