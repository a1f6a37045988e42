"""IWAE and VIMCO objectives on toy models with known evidence, and on the tiny SCALOR.

Toy models keep one importance weight per data point (plate ``batch``); a batch of N identical
data points gives N independent estimates, so Monte Carlo standard errors come for free.
Guide parameters are per data point (one entry per copy), so each entry's gradient is one
independent gradient estimate. Tolerances are 4 standard errors plus quadrature error.
"""

from __future__ import annotations

import itertools
import math
import tempfile

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import RenyiELBO
from pyro.infer.util import is_validation_enabled
from torch.nn.functional import logsigmoid

from pyro_scalor.train.iwae import IWAE, bound_per_datum
from pyro_scalor.train.objectives import OBJECTIVES, make_objective, presence_mode_for
from pyro_scalor.train.vimco import VIMCO, leave_one_out_bounds

S, Q, P0 = 0.7, 0.8, 0.4  # likelihood std, guide std, prior presence probability
MU = (-1.5, 2.0)  # mean of x given b = 0, 1
Normal64 = torch.distributions.Normal


@pytest.fixture(autouse=True)
def _isolated():
    threads, validation = torch.get_num_threads(), is_validation_enabled()
    torch.set_num_threads(1)  # the machine is shared: one thread is faster than two here
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()
    pyro.enable_validation(validation)
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------------------
# toy models: z ~ N(0, 1), x | z ~ N(z, S)  |  b ~ Bern(P0), x | b ~ N(MU[b], S)  |  both
def gauss_model(x):
    with pyro.plate("batch", x.shape[0], dim=-1):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("x", dist.Normal(z, S), obs=x)


def gauss_guide(m):
    def guide(x):
        with pyro.plate("batch", x.shape[0], dim=-1):
            pyro.sample("z", dist.Normal(m + 0.5 * x, Q))

    return guide


def _mu(b):
    return torch.where(b > 0.5, torch.tensor(MU[1]), torch.tensor(MU[0]))


def bern_model(x):
    with pyro.plate("batch", x.shape[0], dim=-1):
        b = pyro.sample("b", dist.Bernoulli(torch.tensor(P0)))
        pyro.sample("x", dist.Normal(_mu(b), S), obs=x)


def bern_guide(theta):
    def guide(x):
        with pyro.plate("batch", x.shape[0], dim=-1):
            pyro.sample("b", dist.Bernoulli(logits=theta))

    return guide


def mixed_model(x):
    with pyro.plate("batch", x.shape[0], dim=-1):
        b = pyro.sample("b", dist.Bernoulli(torch.tensor(P0)))
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("x", dist.Normal(_mu(b) + z, S), obs=x)


def mixed_guide(theta, m):
    def guide(x):
        with pyro.plate("batch", x.shape[0], dim=-1):
            b = pyro.sample("b", dist.Bernoulli(logits=theta))
            pyro.sample("z", dist.Normal(m + 0.4 * x - 0.5 * b, Q))

    return guide


# ------------------------------------------------------------------------------------------------
# exact quantities
def gauss_log_evidence(x: float) -> float:
    return float(Normal64(0.0, math.sqrt(1 + S * S)).log_prob(torch.tensor(x)))


def gauss_elbo(x: float, m: float) -> float:
    """Closed-form ELBO (the K = 1 bound) of the Gaussian toy."""
    loc = m + 0.5 * x
    log_prior = -0.5 * math.log(2 * math.pi) - 0.5 * (loc**2 + Q**2)
    log_lik = -0.5 * math.log(2 * math.pi) - math.log(S) - 0.5 * ((x - loc) ** 2 + Q**2) / S**2
    neg_entropy = -0.5 * math.log(2 * math.pi) - math.log(Q) - 0.5
    return log_prior + log_lik - neg_entropy


def bern_log_evidence(x: float) -> float:
    xs = torch.tensor(x, dtype=torch.float64)
    terms = [math.log(p) + Normal64(mu, S).log_prob(xs) for p, mu in zip((1 - P0, P0), MU)]
    return float(torch.logsumexp(torch.stack(terms), 0))


def bern_iwae_exact(x: float, theta: float, k: int) -> float:
    """The K-particle bound of the Bernoulli toy: a sum over the number j of particles with b=1."""
    q1 = 1 / (1 + math.exp(-theta))
    xs = torch.tensor(x, dtype=torch.float64)
    log_w = [
        math.log(p) + float(Normal64(mu, S).log_prob(xs)) - math.log(q)
        for p, mu, q in zip((1 - P0, P0), MU, (1 - q1, q1))
    ]
    total = 0.0
    for j in range(k + 1):
        log_binom = math.lgamma(k + 1) - math.lgamma(j + 1) - math.lgamma(k - j + 1)
        prob = math.exp(log_binom + j * math.log(q1) + (k - j) * math.log(1 - q1))
        parts = [math.log(j) + log_w[1]] if j else []
        parts += [math.log(k - j) + log_w[0]] if j < k else []
        total += prob * (float(torch.logsumexp(torch.tensor(parts), 0)) - math.log(k))
    return total


def hermite_grid(k: int, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Hermite nodes (n^k, k) and weights (n^k,) for expectations under N(0, I_k)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    nodes = torch.tensor(nodes)
    weights = torch.tensor(weights) / math.sqrt(2 * math.pi)
    eps = torch.stack(torch.meshgrid(*[nodes] * k, indexing="ij"), -1).reshape(-1, k)
    wts = torch.stack(torch.meshgrid(*[weights] * k, indexing="ij"), -1).reshape(-1, k).prod(-1)
    return eps, wts


def mixed_iwae_exact(x: float, theta: torch.Tensor, m: torch.Tensor, k: int) -> torch.Tensor:
    """The exact K-particle bound of the mixed toy (sum over b in {0,1}^K, quadrature over z)."""
    eps, wts = hermite_grid(k)
    xs = torch.tensor(x, dtype=torch.float64)
    total = torch.zeros((), dtype=torch.float64)
    for bits in itertools.product((0.0, 1.0), repeat=k):
        b = torch.tensor(bits, dtype=torch.float64)
        log_qb = b * logsigmoid(theta) + (1 - b) * logsigmoid(-theta)  # (K,)
        loc = m + 0.4 * x - 0.5 * b
        z = loc + Q * eps  # reparameterised: (n^K, K)
        mu = torch.tensor(MU, dtype=torch.float64)[b.long()]
        log_pb = torch.where(b > 0.5, math.log(P0), math.log(1 - P0))
        log_w = (
            log_pb
            + Normal64(0.0, 1.0).log_prob(z)
            + Normal64(mu + z, S).log_prob(xs)
            - Normal64(loc, Q).log_prob(z)
            - log_qb
        )
        inner = (wts * (torch.logsumexp(log_w, -1) - math.log(k))).sum()
        total = total + log_qb.sum().exp() * inner
    return total


def gauss_iwae_exact(x: float, m: torch.Tensor, k: int) -> torch.Tensor:
    """The exact K-particle bound of the Gaussian toy by Gauss-Hermite quadrature."""
    eps, wts = hermite_grid(k)
    xs = torch.tensor(x, dtype=torch.float64)
    loc = m + 0.5 * x
    z = loc + Q * eps
    log_w = (
        Normal64(0.0, 1.0).log_prob(z) + Normal64(z, S).log_prob(xs) - Normal64(loc, Q).log_prob(z)
    )
    return (wts * (torch.logsumexp(log_w, -1) - math.log(k))).sum()


def mean_and_stderr(values: torch.Tensor) -> tuple[float, float]:
    values = values.double()
    return float(values.mean()), float(values.std() / math.sqrt(values.numel()))


# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("toy", ["gauss", "bernoulli"])
def test_iwae_bound_is_below_log_evidence_and_rises_with_k(toy):
    n = 4000
    if toy == "gauss":
        x0, m0 = 1.2, 0.6
        x = torch.full((n,), x0)
        model, guide = gauss_model, gauss_guide(torch.full((n,), m0))
        log_p = gauss_log_evidence(x0)
        exact = {1: gauss_elbo(x0, m0)}
    else:
        x0, theta0 = 0.3, 1.0
        x = torch.full((n,), x0)
        model, guide = bern_model, bern_guide(torch.full((n,), theta0))
        log_p = bern_log_evidence(x0)
        exact = {k: bern_iwae_exact(x0, theta0, k) for k in (1, 5, 50)}
    pyro.set_rng_seed(0)
    stats = {}
    for k in (1, 5, 50):
        lw = IWAE(k, max_plate_nesting=1).log_weights(model, guide, x)
        assert lw.log_w.shape == (k, n)
        stats[k] = mean_and_stderr(bound_per_datum(lw.log_w))
    for k, (mean, se) in stats.items():
        assert mean < log_p + 4 * se, (k, mean, se, log_p)
        if k in exact:
            assert abs(mean - exact[k]) < 4 * se + 1e-9, (k, mean, se, exact[k])
    for lo, hi in ((1, 5), (5, 50)):
        (m_lo, se_lo), (m_hi, se_hi) = stats[lo], stats[hi]
        assert m_hi - m_lo > 4 * math.hypot(se_lo, se_hi), (lo, hi, stats)
    # the bound with many particles is close to the evidence
    assert log_p - stats[50][0] < 0.1 * (log_p - stats[1][0])


def test_iwae_gradient_matches_exact_gradient():
    n, k, x0, m0 = 20000, 3, 1.2, 0.6
    m = torch.full((n,), m0, requires_grad=True)
    pyro.set_rng_seed(1)
    IWAE(k, max_plate_nesting=1).loss_and_grads(gauss_model, gauss_guide(m), torch.full((n,), x0))
    mean, se = mean_and_stderr(-m.grad)  # one estimate per data point
    m_exact = torch.tensor(m0, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(gauss_iwae_exact(x0, m_exact, k), m_exact)
    assert abs(grad) > 10 * se  # the test can tell a wrong gradient from the right one
    assert abs(mean - float(grad)) < 4 * se + 1e-4, (mean, se, float(grad))


def test_vimco_gradient_matches_exact_gradient():
    n, k, x0, theta0, m0 = 20000, 3, 0.8, 0.3, 0.2
    theta = torch.full((n,), theta0, requires_grad=True)
    m = torch.full((n,), m0, requires_grad=True)
    x = torch.full((n,), x0)
    pyro.set_rng_seed(2)
    loss = VIMCO(k, max_plate_nesting=1).loss_and_grads(mixed_model, mixed_guide(theta, m), x)
    t_ex = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    m_ex = torch.tensor(m0, dtype=torch.float64, requires_grad=True)
    bound = mixed_iwae_exact(x0, t_ex, m_ex, k)
    exact = torch.autograd.grad(bound, (t_ex, m_ex))
    for est, ex in zip((-theta.grad, -m.grad), exact):
        mean, se = mean_and_stderr(est)
        assert abs(ex) > 10 * se
        assert abs(mean - float(ex)) < 4 * se + 1e-3, (mean, se, float(ex))
    # the loss is the negative bound summed over data points
    assert abs(-loss / n - bound.item()) < 0.05


def test_bound_keeps_one_weight_per_data_point():
    x = torch.tensor([0.5, -2.5, 3.0, 1.0, -1.5])
    m = torch.tensor(0.3)
    guide = gauss_guide(m)
    k = 4
    pyro.set_rng_seed(3)
    z = dist.Normal(m + 0.5 * x, Q).sample((k,))  # the draws the objectives below will make
    log_w = (
        dist.Normal(0.0, 1.0).log_prob(z)
        + dist.Normal(z, S).log_prob(x)
        - dist.Normal(m + 0.5 * x, Q).log_prob(z)
    ).double()
    per_point = -(torch.logsumexp(log_w, 0) - math.log(k)).sum()
    single = -(torch.logsumexp(log_w.sum(-1), 0) - math.log(k))
    losses = {}
    for name, obj in (
        ("iwae", IWAE(k, max_plate_nesting=1)),
        ("vimco", VIMCO(k, max_plate_nesting=1)),
        ("renyi", RenyiELBO(0.0, k, max_plate_nesting=1, vectorize_particles=True)),
    ):
        pyro.set_rng_seed(3)
        losses[name] = obj.loss(gauss_model, guide, x)
        assert losses[name] == pytest.approx(float(per_point), rel=1e-5), name
    assert abs(float(single) - float(per_point)) > 0.05  # 1000 x the tolerance above


def test_subsampled_data_plate_scales_each_bound():
    full, sub, k = 10, 4, 3
    x_all = torch.linspace(-1, 1, full)
    idx = torch.tensor([1, 4, 6, 9])
    m = torch.tensor(0.2)

    def model(x):
        with pyro.plate("batch", full, subsample=idx, dim=-1) as i:
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z, S), obs=x[i])

    def guide(x):
        with pyro.plate("batch", full, subsample=idx, dim=-1) as i:
            pyro.sample("z", dist.Normal(m + 0.5 * x[i], Q))

    pyro.set_rng_seed(4)
    lw = IWAE(k, max_plate_nesting=1).log_weights(model, guide, x_all)
    assert lw.log_w.shape == (k, sub)
    torch.testing.assert_close(lw.scale, torch.full((sub,), full / sub, dtype=torch.float64))
    pyro.set_rng_seed(4)
    z = dist.Normal(m + 0.5 * x_all[idx], Q).sample((k,))
    xs = x_all[idx]
    hand = dist.Normal(0, 1).log_prob(z) + dist.Normal(z, S).log_prob(xs)
    hand = hand - dist.Normal(m + 0.5 * xs, Q).log_prob(z)
    torch.testing.assert_close(lw.log_w, hand.double(), rtol=1e-5, atol=1e-5)
    pyro.set_rng_seed(4)
    loss = IWAE(k, max_plate_nesting=1).loss(model, guide, x_all)
    expected = -(full / sub) * float(bound_per_datum(hand.double()).sum())
    assert loss == pytest.approx(expected, rel=1e-5)


def test_site_outside_the_data_plate_is_refused_unless_no_data_plate():
    def model(x):
        g = pyro.sample("g", dist.Normal(0.0, 1.0))
        with pyro.plate("batch", x.shape[0], dim=-1):
            pyro.sample("x", dist.Normal(g, S), obs=x)

    def guide(x):
        pyro.sample("g", dist.Normal(0.1, 0.9))

    x = torch.tensor([0.1, 0.3])
    with pytest.raises(ValueError, match="outside the data plate"):
        IWAE(3, max_plate_nesting=1).loss(model, guide, x)
    lw = IWAE(3, max_plate_nesting=1, data_plate=None).log_weights(model, guide, x)
    assert lw.log_w.shape == (3, 1)


def test_argument_errors():
    with pytest.raises(ValueError, match="num_particles >= 2"):
        VIMCO(1)
    with pytest.raises(ValueError, match="particles >= 2"):
        make_objective("vimco", 1)
    with pytest.raises(ValueError, match="reparameterised"):
        IWAE(2, max_plate_nesting=1).loss_and_grads(
            bern_model, bern_guide(torch.zeros(2, requires_grad=True)), torch.zeros(2)
        )


def test_leave_one_out_bounds_by_hand():
    log_w = torch.tensor([[0.0, -1.0], [1.0, 2.0], [-2.0, 0.5]], dtype=torch.float64)
    loo = leave_one_out_bounds(log_w)
    for n in range(2):
        for k in range(3):
            others = [float(log_w[j, n]) for j in range(3) if j != k]
            vals = others + [sum(others) / 2]
            expected = math.log(sum(math.exp(v) for v in vals) / 3)
            assert float(loo[k, n]) == pytest.approx(expected, rel=1e-12)


def test_vimco_without_discrete_sites_is_iwae():
    x = torch.tensor([0.5, -1.0, 2.0])
    grads = []
    for cls in (IWAE, VIMCO):
        m = torch.zeros(3, requires_grad=True)
        pyro.set_rng_seed(5)
        cls(4, max_plate_nesting=1).loss_and_grads(gauss_model, gauss_guide(m), x)
        grads.append(m.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_objective_registry_and_presence_modes():
    assert {"iwae", "vimco"} <= set(OBJECTIVES)
    assert isinstance(make_objective("iwae", 3), IWAE)
    assert isinstance(make_objective("vimco", 3), VIMCO)
    assert make_objective("vimco", 3).max_plate_nesting == 2
    modes = {name: presence_mode_for(name) for name in OBJECTIVES}
    assert modes == {
        "elbo": "relaxed",
        "elbo-relaxed": "relaxed",
        "iwae": "relaxed",
        "vimco": "hard",
    }
    assert presence_mode_for(make_objective("vimco", 2)) == "hard"
    assert presence_mode_for(make_objective("elbo")) == "relaxed"
    with pytest.raises(ValueError, match="unknown objective"):
        presence_mode_for("nope")


# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_video():
    from pyro_scalor.data import load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        ds = load_dataset("smoke", "test", cache_dir=tmp)
        return torch.stack([ds[i]["video"] for i in range(2)])[:, :2]


def _presence_row_grads(scalor):
    head = scalor.nets.discovery_head.net[-1]  # output channel 0 is the presence logit
    return head.weight.grad[0].abs().sum(), head.bias.grad[0].abs()


@pytest.mark.parametrize("objective", ["vimco", "iwae"])
def test_objective_on_tiny_scalor_trains_the_presence_head(objective, smoke_video):
    from pyro_scalor.api import Scalor
    from pyro_scalor.model.config import get_model_config

    pyro.clear_param_store()
    cfg = get_model_config("tiny", presence=presence_mode_for(objective))
    scalor = Scalor(cfg, seed=0)
    loss = make_objective(objective, 2).loss_and_grads(scalor.model, scalor.guide, smoke_video)
    assert math.isfinite(loss)
    w, b = _presence_row_grads(scalor)
    assert torch.isfinite(w) and w > 0 and b > 0


def test_renyi_elbo_gives_hard_presence_no_gradient(smoke_video):
    """Why vimco exists: Pyro's IWAE (RenyiELBO, alpha=0) ignores non-reparameterised sites."""
    from pyro_scalor.api import Scalor
    from pyro_scalor.model.config import get_model_config

    pyro.clear_param_store()
    scalor = Scalor(get_model_config("tiny", presence="hard"), seed=0)
    renyi = RenyiELBO(0.0, 2, max_plate_nesting=2, vectorize_particles=True)
    renyi.loss_and_grads(scalor.model, scalor.guide, smoke_video)
    w, b = _presence_row_grads(scalor)
    assert w == 0 and b == 0
