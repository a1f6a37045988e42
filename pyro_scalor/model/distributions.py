"""Presence distributions: relaxed (logit space, for reparameterised training) and hard.

Relaxed presence follows the SCALOR reference: a sample is drawn in logit space from a logit
relaxed Bernoulli and the presence is its sigmoid; the site value is the *logit*. The analytic KL
between two relaxed presences is registered as the Bernoulli KL between their probabilities, so
``TraceMeanField_ELBO`` reproduces the paper's objective. Hard presence is a plain Bernoulli whose
value is 0/1. :func:`presence_value` maps either kind of site value to a presence in [0, 1].
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from pyro.distributions.torch_distribution import TorchDistributionMixin
from torch.distributions import constraints
from torch.distributions.kl import register_kl
from torch.distributions.relaxed_bernoulli import LogitRelaxedBernoulli

from pyro_scalor.model.config import PRESENCE_MODES

PROB_EPS = 1e-6


class RelaxedPresence(LogitRelaxedBernoulli, TorchDistributionMixin):
    """Logit relaxed Bernoulli whose value is the logit of a relaxed presence sample."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    has_rsample = True

    def expand(self, batch_shape, _instance=None):
        """Expand to ``batch_shape``; returns a new RelaxedPresence."""
        new = self._get_checked_instance(RelaxedPresence, _instance)
        return super().expand(batch_shape, _instance=new)


@register_kl(RelaxedPresence, RelaxedPresence)
def _kl_relaxed_presence(q: RelaxedPresence, p: RelaxedPresence) -> torch.Tensor:
    """Analytic Bernoulli KL between the presence probabilities of q and p."""
    qp = q.probs.clamp(PROB_EPS, 1 - PROB_EPS)
    pp = p.probs.clamp(PROB_EPS, 1 - PROB_EPS)
    return qp * (qp.log() - pp.log()) + (1 - qp) * ((1 - qp).log() - (1 - pp).log())


def presence_dist(probs: torch.Tensor, mode: str, temperature: float) -> dist.Distribution:
    """Presence distribution with probabilities ``probs`` (clamped away from 0 and 1)."""
    probs = probs.clamp(PROB_EPS, 1 - PROB_EPS)
    if mode == "relaxed":
        return RelaxedPresence(torch.as_tensor(temperature, dtype=probs.dtype), probs=probs)
    if mode == "hard":
        return dist.Bernoulli(probs=probs)
    raise ValueError(f"unknown presence mode {mode!r}; valid choices: {', '.join(PRESENCE_MODES)}")


def presence_value(value: torch.Tensor, mode: str) -> torch.Tensor:
    """Map a presence site's value to a presence in [0, 1] (sigmoid of a relaxed logit)."""
    return torch.sigmoid(value) if mode == "relaxed" else value


def presence_mode_value(probs: torch.Tensor, mode: str, threshold: float = 0.5) -> torch.Tensor:
    """A deterministic site value for presence ``probs``: hard 0/1 decision, present above
    ``threshold`` (0.5: the mode)."""
    hard = (probs > threshold).to(probs.dtype)
    if mode == "relaxed":
        # a large finite logit, so that sigmoid gives exactly the hard decision in float32
        return (hard * 2 - 1) * 30.0
    return hard
