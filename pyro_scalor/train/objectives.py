"""Training objectives selected by name.

``elbo``: the paper's objective: ``TraceMeanField_ELBO``, which uses the registered analytic
Bernoulli KL for relaxed presence and analytic Gaussian KLs weighted by soft presence (the model
config's ``weight_kl_by_presence``). ``elbo-relaxed``: ``Trace_ELBO`` on the relaxed densities
(Monte Carlo log-density ratios, no analytic KLs).
"""

from __future__ import annotations

from pyro.infer import ELBO, Trace_ELBO, TraceMeanField_ELBO

OBJECTIVES = ("elbo", "elbo-relaxed")


def make_objective(name: str, particles: int = 1, max_plate_nesting: int = 2) -> ELBO:
    """Return the Pyro ELBO object for objective ``name`` with ``particles`` vectorised samples."""
    common = dict(
        num_particles=particles,
        vectorize_particles=particles > 1,
        max_plate_nesting=max_plate_nesting,
    )
    if name == "elbo":
        return TraceMeanField_ELBO(**common)
    if name == "elbo-relaxed":
        return Trace_ELBO(**common)
    raise ValueError(f"unknown objective {name!r}; valid choices: {', '.join(OBJECTIVES)}")
