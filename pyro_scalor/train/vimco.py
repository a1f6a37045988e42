"""VIMCO: the importance-weighted bound with leave-one-out control variates for discrete sites.

Mnih & Rezende (2016), as used by SQAIR (Kosiorek et al. 2018) for hard Bernoulli presence.
With K >= 2 particles per data point n and log weights ``log w_kn``, the bound is
``L_n = logsumexp_k log w_kn - log K``. The gradient estimator is that of the surrogate

    sum_n [ L_n + sum_k stop_grad(L_n - L_{-k,n}) * log q(discrete sites of particle k) ]

where ``L_{-k,n}`` is the bound with ``log w_kn`` replaced by the mean of the other particles'
log weights (the geometric-mean baseline). Reparameterised sites get pathwise gradients through
``L_n``; the discrete sites' own ``-log q`` inside ``log w`` is differentiated there too.
"""

from __future__ import annotations

import math

import torch
from pyro.util import warn_if_nan

from pyro_scalor.train.iwae import ImportanceWeightedELBO, bound_per_datum


def leave_one_out_bounds(log_w: torch.Tensor) -> torch.Tensor:
    """VIMCO baselines ``L_{-k,n}``: the bound with log w_kn replaced by the others' mean.

    Takes log weights (K, N) with K >= 2; returns (K, N).
    """
    k = log_w.shape[0]
    if k < 2:
        raise ValueError(f"leave-one-out baselines need at least 2 particles, got {k}")
    others_mean = (log_w.sum(0, keepdim=True) - log_w) / (k - 1)
    mat = log_w.unsqueeze(0).expand((k,) + log_w.shape).clone()  # mat[k, j] = log w_j
    idx = torch.arange(k, device=log_w.device)
    mat[idx, idx] = others_mean
    return torch.logsumexp(mat, 1) - math.log(k)


class VIMCO(ImportanceWeightedELBO):
    """The VIMCO gradient estimator of the importance-weighted bound, as a Pyro ELBO.

    Works on any model/guide pair whose data plate (``data_plate``, default ``batch``) encloses
    every sample site; ``num_particles`` K >= 2 samples are drawn in one vectorised pass at dim
    ``-(max_plate_nesting + 1)``. :meth:`loss` returns the negative IWAE bound summed over data
    points; :meth:`loss_and_grads` backpropagates the VIMCO surrogate and returns the same value.
    """

    def __init__(
        self,
        num_particles: int = 2,
        max_plate_nesting: float = float("inf"),
        data_plate: str | None = "batch",
    ) -> None:
        if num_particles < 2:
            raise ValueError(f"VIMCO needs num_particles >= 2, got {num_particles}")
        super().__init__(num_particles, max_plate_nesting, data_plate)

    def surrogate_loss(self, model, guide, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(surrogate, loss)``: the tensor to differentiate and the negative bound."""
        lw = self.log_weights(model, guide, *args, **kwargs)
        bound = bound_per_datum(lw.log_w)  # (N,)
        surrogate = bound
        if lw.discrete:
            signal = (bound.detach() - leave_one_out_bounds(lw.log_w.detach())).detach()
            surrogate = surrogate + (signal * lw.score).sum(0)
        return -(lw.scale * surrogate).sum(), -(lw.scale * bound).sum().detach()

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        """Backpropagate the VIMCO surrogate; returns the negative IWAE bound (a float)."""
        surrogate, loss = self.surrogate_loss(model, guide, *args, **kwargs)
        if surrogate.requires_grad:
            surrogate.backward(retain_graph=self.retain_graph)
        value = loss.item()
        warn_if_nan(value, "loss")
        return value
