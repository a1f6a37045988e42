"""Training objectives selected by name.

``elbo``: the paper's objective: ``TraceMeanField_ELBO``, which uses the registered analytic
Bernoulli KL for relaxed presence and analytic Gaussian KLs weighted by soft presence (the model
config's ``weight_kl_by_presence``). ``elbo-relaxed``: ``Trace_ELBO`` on the relaxed densities
(Monte Carlo log-density ratios, no analytic KLs). ``iwae``: the importance-weighted bound with
reparameterised gradients (needs relaxed presence). ``vimco``: the importance-weighted bound with
VIMCO's leave-one-out score-function gradients for hard Bernoulli presence (needs hard presence
and particles >= 2). :func:`presence_mode_for` says which presence each objective needs.
"""

from __future__ import annotations

from pyro.infer import ELBO, Trace_ELBO, TraceMeanField_ELBO

from pyro_scalor.train.iwae import IWAE
from pyro_scalor.train.vimco import VIMCO

OBJECTIVES = ("elbo", "elbo-relaxed", "iwae", "vimco")


def make_objective(name: str, particles: int = 1, max_plate_nesting: int = 2) -> ELBO:
    """Return the Pyro ELBO object for objective ``name`` with ``particles`` vectorised samples."""
    if name == "iwae":
        return IWAE(particles, max_plate_nesting=max_plate_nesting)
    if name == "vimco":
        if particles < 2:
            raise ValueError(f"the vimco objective needs particles >= 2, got {particles}")
        return VIMCO(particles, max_plate_nesting=max_plate_nesting)
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


def presence_mode_for(objective: str | ELBO) -> str:
    """The ``ModelConfig.presence`` an objective (a name or an ELBO object) needs.

    'hard' for vimco (score-function gradients for Bernoulli presence), 'relaxed' for the others
    (their gradients need reparameterised presence).
    """
    if isinstance(objective, ELBO):
        return "hard" if isinstance(objective, VIMCO) else "relaxed"
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; valid choices: {', '.join(OBJECTIVES)}")
    return "hard" if objective == "vimco" else "relaxed"
