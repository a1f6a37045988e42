"""The importance-weighted bound (IWAE, Burda et al. 2016) with one weight per data point.

For K particles z_1..K ~ q(z | x_n) drawn in one vectorised pass, the bound of data point n is
``L_n = logsumexp_k log w_kn - log K`` with ``log w_kn = log p(x_n, z_kn) - log q(z_kn | x_n)``,
and the objective is ``sum_n L_n``. Each data point keeps its own weights: a site's log density
is summed over every dim except the particle dim and the dim of the *data plate* (``batch`` by
default), which must enclose every sample site. Subsampling the data plate scales each ``L_n``
(not the log weights) by ``full_size / subsample_size``.

:class:`ImportanceWeightedELBO` holds the shared machinery (:meth:`log_weights`); :class:`IWAE`
differentiates the bound itself, which is right only when every guide site is reparameterised
(relaxed presence). :class:`pyro_scalor.train.vimco.VIMCO` adds score-function terms with
leave-one-out baselines for discrete guide sites.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import pyro
import torch
from pyro.infer import ELBO
from pyro.infer.enum import get_importance_trace
from pyro.infer.util import is_identically_zero
from pyro.util import check_if_enumerated, warn_if_nan

PARTICLE_PLATE = "num_particles_vectorized"


class LogWeights(NamedTuple):
    """Per-particle, per-data-point quantities of one vectorised pass (float64).

    ``log_w`` (K, N): log p(x_n, z_kn) - log q(z_kn | x_n); ``score`` (K, N): the sum of the guide's
    score-function terms (log q of its non-reparameterised sites; zeros if none); ``scale`` (N,):
    the data plate's subsampling factor (ones without subsampling); ``discrete``: names of the
    guide sites with a score-function term. N is 1 without a data plate.
    """

    log_w: torch.Tensor
    score: torch.Tensor
    scale: torch.Tensor
    discrete: tuple[str, ...]


def trace_log_weights(
    model_trace, guide_trace, *, particle_dim: int, data_plate: str | None = "batch"
) -> LogWeights:
    """Per-data-point log weights of a model trace replayed against a vectorised guide trace.

    Takes traces whose sample sites carry a particle plate at ``particle_dim`` (negative), e.g.
    from ``get_importance_trace``; ``data_plate`` names the plate that must enclose every sample
    site (None: one weight per particle). Returns :class:`LogWeights`.
    """
    model_trace.compute_log_prob()
    guide_trace.compute_score_parts()
    terms, scores, discrete, factor = [], [], [], 1.0
    for sign, trace in ((1.0, model_trace), (-1.0, guide_trace)):
        for name, site in trace.nodes.items():
            if site["type"] != "sample":
                continue
            lp, factor = _per_datum(site["log_prob"], site, name, particle_dim, data_plate)
            terms.append(sign * lp)
            sf = site["score_parts"].score_function if trace is guide_trace else 0
            if not is_identically_zero(sf):
                scores.append(_per_datum(sf, site, name, particle_dim, data_plate)[0])
                discrete.append(name)
    if not terms:
        raise ValueError("the model and guide have no sample sites")
    log_w = terms[0]
    for t in terms[1:]:
        log_w = log_w + t
    score = torch.zeros_like(log_w)
    for s in scores:
        score = score + s
    scale = torch.full(log_w.shape[-1:], factor, dtype=log_w.dtype, device=log_w.device)
    return LogWeights(log_w, score, scale, tuple(discrete))


def _per_datum(value, site, name, particle_dim, data_plate) -> tuple[torch.Tensor, float]:
    """Sum a site's log density to (K, N) (N = 1 without a data plate) in float64.

    Returns it divided by the data plate's subsampling factor, and that factor.
    """
    value = torch.as_tensor(value).to(torch.float64)
    nd = -particle_dim
    if value.dim() > nd:
        raise ValueError(
            f"site {name!r} has log-density shape {tuple(value.shape)} with dims left of the "
            f"particle dim {particle_dim}: enumeration is not supported"
        )
    value = value.reshape((1,) * (nd - value.dim()) + value.shape)
    if data_plate is None:
        return value.reshape(value.shape[0], -1).sum(-1, keepdim=True), 1.0
    frame = next((f for f in site["cond_indep_stack"] if f.name == data_plate), None)
    if frame is None:
        raise ValueError(
            f"sample site {name!r} is outside the data plate {data_plate!r}: an importance-"
            "weighted bound with one weight per data point needs the data plate to enclose "
            "every sample site (or pass data_plate=None for a single weight)"
        )
    if frame.dim is None or frame.dim <= particle_dim:
        raise ValueError(f"data plate {data_plate!r} must be vectorised right of the particles")
    factor = 1.0
    if frame.full_size is not None and frame.full_size != frame.size:
        factor = frame.full_size / frame.size
        value = value / factor
    other = [d for d in range(1, nd) if d != nd + frame.dim]
    return (value.sum(other, keepdim=True) if other else value).reshape(
        value.shape[0], value.shape[nd + frame.dim]
    ), factor


def bound_per_datum(log_w: torch.Tensor) -> torch.Tensor:
    """IWAE bound of each data point: ``logsumexp_k log_w[k, n] - log K``; (K, N) -> (N,)."""
    return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])


class ImportanceWeightedELBO(ELBO):
    """Base of importance-weighted objectives: vectorised particles, per-data-point weights.

    ``num_particles`` K samples per data point are drawn in one pass under a plate at dim
    ``-(max_plate_nesting + 1)`` (even for K = 1); ``max_plate_nesting`` counts the model's own
    plates (guessed by one run if omitted); ``data_plate`` names the plate of independent data
    points (None: one weight for the whole model). :meth:`loss` returns ``-sum_n L_n``.
    """

    def __init__(
        self,
        num_particles: int = 2,
        max_plate_nesting: float = float("inf"),
        data_plate: str | None = "batch",
    ) -> None:
        if num_particles < 1:
            raise ValueError(f"num_particles must be >= 1, got {num_particles}")
        super().__init__(
            num_particles=num_particles,
            max_plate_nesting=max_plate_nesting,
            vectorize_particles=False,
            strict_enumeration_warning=False,
        )
        self.data_plate = data_plate

    def _get_trace(self, model, guide, args, kwargs):
        """One model/guide trace pair with log densities and guide score parts computed."""
        model_trace, guide_trace = get_importance_trace(
            "flat", self.max_plate_nesting + 1, model, guide, args, kwargs
        )
        check_if_enumerated(guide_trace)
        return model_trace, guide_trace

    def log_weights(self, model, guide, *args, **kwargs) -> LogWeights:
        """Run guide and model once with K vectorised particles; returns :class:`LogWeights`."""
        if self.max_plate_nesting == float("inf"):
            self._guess_max_plate_nesting(model, guide, args, kwargs)
        dim = -(int(self.max_plate_nesting) + 1)
        particles = pyro.plate(PARTICLE_PLATE, self.num_particles, dim=dim)
        model_trace, guide_trace = self._get_trace(particles(model), particles(guide), args, kwargs)
        return trace_log_weights(
            model_trace, guide_trace, particle_dim=dim, data_plate=self.data_plate
        )

    def bound(self, model, guide, *args, **kwargs) -> torch.Tensor:
        """The importance-weighted bound ``sum_n scale_n L_n`` as a differentiable tensor."""
        lw = self.log_weights(model, guide, *args, **kwargs)
        return (lw.scale * bound_per_datum(lw.log_w)).sum()

    @torch.no_grad()
    def loss(self, model, guide, *args, **kwargs) -> float:
        """The negative importance-weighted bound, summed over data points (a float)."""
        loss = -self.bound(model, guide, *args, **kwargs).item()
        warn_if_nan(loss, "loss")
        return loss


class IWAE(ImportanceWeightedELBO):
    """The IWAE objective with reparameterised gradients (Burda et al. 2016).

    Every guide site must be reparameterised (use relaxed presence); a guide with a
    non-reparameterised site raises ValueError in :meth:`loss_and_grads` rather than silently
    dropping its gradient (use :class:`~pyro_scalor.train.vimco.VIMCO` for discrete sites).
    """

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        """The negative bound as a tensor to differentiate (reparameterised guides only)."""
        lw = self.log_weights(model, guide, *args, **kwargs)
        if lw.discrete:
            raise ValueError(
                "IWAE needs every guide site to be reparameterised (relaxed presence); the "
                f"guide's sites {', '.join(lw.discrete)} are not: use the 'vimco' objective"
            )
        return -(lw.scale * bound_per_datum(lw.log_w)).sum()

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        """Backpropagate the negative bound; returns its value (a float)."""
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        if loss.requires_grad:
            loss.backward(retain_graph=self.retain_graph)
        value = loss.item()
        warn_if_nan(value, "loss")
        return value
