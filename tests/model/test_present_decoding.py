"""Decoding only present slots: the same frames, loss and gradients as decoding every slot."""

from __future__ import annotations

import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO

from pyro_scalor.api import Scalor
from pyro_scalor.model import model as model_module
from pyro_scalor.model import render as render_module
from pyro_scalor.model.config import get_model_config
from pyro_scalor.model.nets import GlimpseDecoder
from pyro_scalor.model.render import decode_glimpses
from tests.conftest import make_video


def test_absent_slots_get_zero_glimpses_and_present_ones_their_decode():
    torch.manual_seed(0)
    cfg = get_model_config("tiny")
    dec = GlimpseDecoder(cfg)
    what = torch.randn(2, 5, cfg.z_what_dim)
    pres = torch.tensor([[1.0, 0.0, 0.3, 0.0, 1e-7], [0.0, 0.0, 0.0, 0.0, 0.0]])
    full = decode_glimpses(dec, what)
    out = decode_glimpses(dec, what, pres)
    live = pres != 0
    assert out.shape == full.shape
    torch.testing.assert_close(out[live], full[live])
    assert (out[~live] == 0).all()
    # a floor: objects at or below it get zeros too
    floored = decode_glimpses(dec, what, pres, floor=0.3)
    above = pres > 0.3
    torch.testing.assert_close(floored[above], full[above])
    assert (floored[~above] == 0).all() and above.sum() == 1
    # nothing present at all: zeros of the right shape; a presence that broadcasts: every slot
    assert (decode_glimpses(dec, what, torch.zeros(2, 5)) == 0).all()
    torch.testing.assert_close(decode_glimpses(dec, what, torch.ones(3, 2, 5)), full)


def test_skipping_absent_slots_leaves_loss_and_gradients_unchanged(monkeypatch):
    # more slots than proposals over the first frames: the slots no proposal claimed yet keep
    # presence exactly 0
    cfg = get_model_config("tiny")
    cfg = cfg.replace(max_objects=3 * cfg.num_cells - 2)
    video = make_video(b=2, t=3, size=cfg.image_size)

    def run() -> tuple[float, dict]:
        scalor = Scalor(cfg, seed=0)
        pyro.set_rng_seed(3)
        kw = {"temperature": 0.7, "disc_pres_prior": 0.3}
        loss = Trace_ELBO().differentiable_loss(scalor.model, scalor.guide, video, **kw)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in scalor.nets.named_parameters() if p.grad is not None}
        return float(loss.detach()), grads

    seen = []
    original = render_module.decode_glimpses

    def counting(decoder, what, presence=None, floor=0.0):
        if presence is not None and presence.shape == what.shape[:-1]:
            seen.append(float((presence == 0).float().mean()))
        return original(decoder, what, presence, floor)

    monkeypatch.setattr(model_module, "decode_glimpses", counting)
    skipped, g1 = run()
    assert max(seen) > 0.3  # a good share of the slots were empty and not decoded

    def everything(decoder, what, presence=None, floor=0.0):
        return original(decoder, what)

    monkeypatch.setattr(model_module, "decode_glimpses", everything)
    monkeypatch.setattr(render_module, "decode_glimpses", everything)
    decoded, g2 = run()
    assert skipped == pytest.approx(decoded, rel=1e-6)
    assert g1.keys() == g2.keys()
    for name in g1:
        torch.testing.assert_close(g1[name], g2[name], rtol=1e-4, atol=1e-6, msg=name)


def test_presence_floor_is_validated_and_cpu_default_sets_it():
    from pyro_scalor.train.config import get_run_preset

    assert get_run_preset("cpu-default").model.presence_floor == 1e-4
    assert get_model_config("tiny").presence_floor == 0.0  # exact unless asked
    with pytest.raises(ValueError, match="presence_floor must be in"):
        get_model_config("tiny", presence_floor=0.5)
