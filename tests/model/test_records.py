"""Typed per-frame records, the flatten-apply-restore helper and the named discovery head."""

from __future__ import annotations

from typing import NamedTuple

import pyro
import pyro.poutine as poutine
import torch

from pyro_scalor.api import Scalor
from pyro_scalor.model.config import get_model_config
from pyro_scalor.model.geometry import apply_flat, mask_boxes
from pyro_scalor.model.nets import PRESENCE_LOGIT_BOUND, DiscoveryHead, Proposals
from pyro_scalor.model.records import GuideFrame, ModelFrame, stack_frames


class Pair(NamedTuple):
    first: torch.Tensor
    second: torch.Tensor


def test_apply_flat_restores_leading_dims_in_every_container():
    seen = []

    def fn(a, b):
        seen.append((a.shape, b.shape))
        return {"sum": a + b, "parts": Pair(a, b[:, :1]), "list": (a * 2,)}

    a = torch.randn(2, 3, 5, 4)
    b = torch.randn(3, 5, 4)  # broadcasts over the leading 2
    out = apply_flat(fn, a, b)
    assert seen == [((30, 4), (30, 4))]
    torch.testing.assert_close(out["sum"], a + b)
    assert isinstance(out["parts"], Pair) and out["parts"].second.shape == (2, 3, 5, 1)
    assert isinstance(out["list"], tuple) and out["list"][0].shape == (2, 3, 5, 4)
    maps = apply_flat(lambda x: x.mean(1, keepdim=True), torch.ones(2, 3, 4, 8, 8), keep=3)
    assert maps.shape == (2, 3, 1, 8, 8)


def test_mask_boxes_are_tight_with_exclusive_max_and_empty_masks_are_zero():
    mask = torch.zeros(2, 6, 8, dtype=torch.bool)
    mask[0, 1:4, 2:7] = True
    boxes, area = mask_boxes(mask)
    torch.testing.assert_close(boxes, torch.tensor([[2.0, 1.0, 7.0, 4.0], [0.0, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close(area, torch.tensor([15.0, 0.0]))


def test_discovery_head_returns_named_bounded_parts():
    cfg = get_model_config("tiny")
    head = DiscoveryHead(cfg)
    with torch.no_grad():
        head.net[-1].bias[0] = 1000.0  # an unbounded presence logit
    g = cfg.grid_size
    out = head(torch.randn(3, cfg.feature_dim + 16, g, g))
    assert isinstance(out, Proposals)
    assert out.pres_logit.shape == (3, g * g)
    assert out.where_loc.shape == out.where_scale.shape == (3, g * g, 4)
    assert out.depth_loc.shape == out.depth_scale.shape == (3, g * g, 1)
    assert (out.pres_logit <= PRESENCE_LOGIT_BOUND).all() and (out.pres_logit > 8.7).all()
    assert (out.where_scale > 0).all() and (out.depth_scale > 0).all()


def test_programs_fill_one_typed_record_per_frame():
    scalor = Scalor(get_model_config("tiny"), seed=0)
    pyro.set_rng_seed(0)
    video = torch.rand(2, 3, 3, 64, 64)
    guide_frames, model_frames = [], []
    with torch.no_grad():
        trace = poutine.trace(scalor.guide).get_trace(video, record=guide_frames)
        poutine.replay(scalor.model, trace=trace)(video, record=model_frames)
    assert len(guide_frames) == len(model_frames) == 3
    assert all(isinstance(f, GuideFrame) for f in guide_frames)
    assert all(isinstance(f, ModelFrame) for f in model_frames)
    k = scalor.config.max_objects
    g, m = stack_frames(guide_frames), stack_frames(model_frames)
    assert g.presence.shape == g.ids.shape == g.depth.shape == (2, 3, k)
    assert g.box.shape == m.mask_box.shape == (2, 3, k, 4)
    assert g.num_propagated.shape == g.num_rejected.shape == (2, 3)
    assert m.reconstruction.shape == m.background.shape == (2, 3, 3, 64, 64)
    assert m.foreground_mask.shape == (2, 3, 1, 64, 64)
    assert (g.num_propagated[:, 0] == 0).all()  # nothing to propagate at the first frame
    assert torch.equal(g.presence, m.presence) and torch.equal(g.ids, m.ids)
    assert not m.reconstruction.requires_grad
