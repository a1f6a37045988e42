"""Pyro effect handlers for generation.

:class:`NoiseScale` multiplies the scale of every Gaussian latent site that is sampled (not
replayed or observed) by a factor: 1 samples the model exactly, 0 takes the prior means, values
in between give the "temperature" pictures common in generative-model papers. Presence sites are
left alone.
"""

from __future__ import annotations

import pyro.distributions as dist
from pyro.poutine.messenger import Messenger


class NoiseScale(Messenger):
    """Scale the standard deviation of sampled Normal latent sites by ``factor`` (>= 0)."""

    def __init__(self, factor: float) -> None:
        if not factor >= 0:
            raise ValueError(f"noise scale must be >= 0, got {factor}")
        super().__init__()
        self.factor = float(factor)

    def _pyro_sample(self, msg: dict) -> None:
        if self.factor == 1.0 or msg["is_observed"] or msg["value"] is not None:
            return
        fn = msg["fn"]
        events = 0
        while isinstance(fn, dist.Independent):
            events += fn.reinterpreted_batch_ndims
            fn = fn.base_dist
        if not isinstance(fn, dist.Normal):
            return
        scale = (fn.scale * self.factor).clamp(min=1e-8)
        new = dist.Normal(fn.loc, scale)
        msg["fn"] = new.to_event(events) if events else new
