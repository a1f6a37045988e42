"""The NoiseScale effect handler used by generation."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import pytest
import torch

from pyro_scalor.model.handlers import NoiseScale


def toy():
    a = pyro.sample("a", dist.Normal(torch.full((3,), 3.0), 2.0).to_event(1))
    b = pyro.sample("b", dist.Normal(-1.0, 0.5))
    c = pyro.sample("c", dist.Bernoulli(0.5))
    pyro.sample("obs", dist.Normal(a.sum() + b, 1.0), obs=torch.tensor(0.0))
    return a, b, c


def test_zero_noise_gives_the_means_and_leaves_other_sites_alone():
    pyro.set_rng_seed(0)
    tr = poutine.trace(NoiseScale(0.0)(toy)).get_trace()
    torch.testing.assert_close(tr.nodes["a"]["value"], torch.full((3,), 3.0))
    assert abs(tr.nodes["b"]["value"].item() + 1.0) < 1e-6
    assert isinstance(tr.nodes["c"]["fn"], dist.Bernoulli)
    assert tr.nodes["a"]["fn"].event_shape == (3,)
    assert tr.nodes["obs"]["fn"].scale.item() == 1.0  # observed sites keep their scale


def test_scale_multiplies_the_std_and_one_changes_nothing():
    half = poutine.trace(NoiseScale(0.5)(toy)).get_trace()
    assert torch.allclose(half.nodes["a"]["fn"].base_dist.scale, torch.full((3,), 1.0))
    one = poutine.trace(NoiseScale(1.0)(toy)).get_trace()
    assert torch.allclose(one.nodes["a"]["fn"].base_dist.scale, torch.full((3,), 2.0))


def test_replayed_values_are_kept():
    pyro.set_rng_seed(1)
    guide_tr = poutine.trace(toy).get_trace()
    tr = poutine.trace(NoiseScale(0.0)(poutine.replay(toy, trace=guide_tr))).get_trace()
    assert torch.equal(tr.nodes["a"]["value"], guide_tr.nodes["a"]["value"])


def test_negative_noise_scale_is_refused():
    with pytest.raises(ValueError, match="noise scale"):
        NoiseScale(-0.1)
