"""Presence distributions: the registered analytic KL, sampling, presence values."""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import TraceMeanField_ELBO
from torch.distributions import kl_divergence

from pyro_scalor.model.distributions import (
    RelaxedPresence,
    presence_dist,
    presence_mode_value,
    presence_value,
)

# Bernoulli KL(q || p) = q log(q/p) + (1-q) log((1-q)/(1-p)), by hand:
#   q=0.3, p=0.1: 0.3 * 1.0986123 + 0.7 * (-0.2513144) = 0.1536636
#   q=0.9, p=0.5: 0.9 * 0.5877867 + 0.1 * (-1.6094379) = 0.3680642
#   q=0.1, p=0.9: 0.1 * (-2.1972246) + 0.9 * 2.1972246 = 1.7577797
HAND_KL = [(0.3, 0.1, 0.1536636), (0.9, 0.5, 0.3680642), (0.1, 0.9, 1.7577797), (0.4, 0.4, 0.0)]


@pytest.mark.parametrize("q, p, expected", HAND_KL)
@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_relaxed_presence_kl_is_the_bernoulli_kl(q, p, expected, temperature):
    t = torch.tensor(temperature)
    kl = kl_divergence(
        RelaxedPresence(t, probs=torch.tensor(q)), RelaxedPresence(t, probs=torch.tensor(p))
    )
    assert float(kl) == pytest.approx(expected, abs=1e-5)
    bern = kl_divergence(
        dist.Bernoulli(probs=torch.tensor(q)), dist.Bernoulli(probs=torch.tensor(p))
    )
    assert float(kl) == pytest.approx(float(bern), abs=1e-5)


def test_kl_survives_expand_and_is_elementwise():
    q = RelaxedPresence(torch.tensor(0.5), probs=torch.tensor([0.3, 0.9, 0.1]))
    p = RelaxedPresence(torch.tensor(0.5), probs=torch.tensor([0.1, 0.5, 0.9]))
    qe, pe = q.expand((2, 3)), p.expand((2, 3))
    assert type(qe) is RelaxedPresence and qe.batch_shape == (2, 3)
    kl = kl_divergence(qe, pe)
    assert kl.shape == (2, 3)
    expected = torch.tensor([e for _, _, e in HAND_KL[:3]])
    torch.testing.assert_close(kl, expected.expand(2, 3), atol=1e-5, rtol=0)


def test_trace_mean_field_elbo_uses_the_registered_kl():
    # no observations: the loss is exactly the summed analytic KL, no sampling noise
    q = torch.tensor([0.3, 0.9, 0.1])
    p = torch.tensor([0.1, 0.5, 0.9])

    def model():
        with pyro.plate("n", 3):
            pyro.sample("z", presence_dist(p, "relaxed", 0.7))

    def guide():
        with pyro.plate("n", 3):
            pyro.sample("z", presence_dist(q, "relaxed", 0.7))

    loss = TraceMeanField_ELBO().loss(model, guide)
    assert loss == pytest.approx(0.1536636 + 0.3680642 + 1.7577797, abs=1e-4)


def test_kl_clamps_extreme_probabilities_to_finite_values():
    t = torch.tensor(1.0)
    kl = kl_divergence(
        RelaxedPresence(t, probs=torch.tensor([0.5, 1.0])),
        RelaxedPresence(t, probs=torch.tensor([0.0, 0.0])),
    )
    assert torch.isfinite(kl).all() and (kl > 0).all()


def test_relaxed_sample_is_a_logit_with_bernoulli_sign_probability():
    # P(logit sample > 0) = p exactly, whatever the temperature
    pyro.set_rng_seed(0)
    d = presence_dist(torch.full((40000,), 0.3), "relaxed", 0.5)
    assert isinstance(d, RelaxedPresence) and d.has_rsample
    v = d.rsample()
    assert float((v > 0).float().mean()) == pytest.approx(0.3, abs=0.015)
    pres = presence_value(v, "relaxed")
    assert ((pres >= 0) & (pres <= 1)).all()
    torch.testing.assert_close(pres, torch.sigmoid(v))
    assert torch.isfinite(d.log_prob(v)).all()


def test_rsample_is_differentiable_in_the_probabilities():
    probs = torch.full((5,), 0.4, requires_grad=True)
    presence_dist(probs, "relaxed", 1.0).rsample().sum().backward()
    assert probs.grad is not None and (probs.grad != 0).all()


def test_hard_presence_is_a_bernoulli():
    pyro.set_rng_seed(0)
    d = presence_dist(torch.full((1000,), 0.3), "hard", 1.0)
    assert isinstance(d, dist.Bernoulli)
    v = d.sample()
    assert set(v.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(presence_value(v, "hard"), v)


def test_presence_dist_clamps_probabilities():
    for mode in ("relaxed", "hard"):
        d = presence_dist(torch.tensor([0.0, 1.0]), mode, 1.0)
        assert (d.probs > 0).all() and (d.probs < 1).all()
    with pytest.raises(ValueError, match="presence mode"):
        presence_dist(torch.tensor([0.5]), "soft", 1.0)


def test_mode_values_give_exact_hard_decisions():
    probs = torch.tensor([0.1, 0.49, 0.51, 0.99])
    hard = presence_mode_value(probs, "hard")
    torch.testing.assert_close(hard, torch.tensor([0.0, 0.0, 1.0, 1.0]))
    relaxed = presence_value(presence_mode_value(probs, "relaxed"), "relaxed")
    assert relaxed[2] == 1.0 and relaxed[3] == 1.0
    assert (relaxed[:2] < 1e-12).all()
    assert math.isclose(float(relaxed[:2].sum()), 0.0, abs_tol=1e-12)


def test_a_mode_threshold_above_one_half_keeps_only_confident_presences():
    probs = torch.tensor([0.51, 0.7, 0.71, 0.99])
    hard = presence_mode_value(probs, "hard", threshold=0.7)
    torch.testing.assert_close(hard, torch.tensor([0.0, 0.0, 1.0, 1.0]))
    relaxed = presence_value(presence_mode_value(probs, "relaxed", threshold=0.7), "relaxed")
    torch.testing.assert_close(relaxed, torch.tensor([0.0, 0.0, 1.0, 1.0]))
