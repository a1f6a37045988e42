"""Swappable priors of the generative model, chosen by name in :class:`ModelConfig`.

Object transition priors (``ModelConfig.transition_prior``) give p(where, what, depth of a
propagated object | its tracker state): ``learned`` uses the tracker GRU (what and depth as
residuals of the previous values), ``fixed`` is a standard normal.

Background priors (``ModelConfig.background_prior``) give p(z_bg_t | z_bg_<t): ``learned`` is a
GRU transition from the previous z_bg (the paper's background transition), ``fixed`` a standard
normal; at t = 0 both are a standard normal.
"""

from __future__ import annotations

import torch

from pyro_scalor.model.geometry import apply_flat

Params = tuple[torch.Tensor, torch.Tensor]


def _standard(like: torch.Tensor) -> Params:
    return torch.zeros_like(like), torch.ones_like(like)


def learned_transition(tracker_out: dict, prev_what: torch.Tensor, prev_depth: torch.Tensor):
    """Learned transition: where change, what and depth residuals from the tracker state."""
    what_loc, what_scale = tracker_out["what"]
    depth_loc, depth_scale = tracker_out["depth"]
    return {
        "where": tracker_out["where"],
        "what": (prev_what + what_loc, what_scale),
        "depth": (prev_depth + depth_loc, depth_scale),
    }


def fixed_transition(tracker_out: dict, prev_what: torch.Tensor, prev_depth: torch.Tensor):
    """Fixed transition: standard normal priors for where change, what and depth."""
    return {k: _standard(tracker_out[k][0]) for k in ("where", "what", "depth")}


TRANSITIONS = {"learned": learned_transition, "fixed": fixed_transition}


def background_prior(
    kind: str, transition: torch.nn.Module, z_prev: torch.Tensor | None, h: torch.Tensor, dim: int
):
    """Prior ``(loc, scale, new_state)`` of z_bg at a frame.

    ``kind`` is 'learned' or 'fixed' (:data:`pyro_scalor.model.config.BACKGROUND_PRIORS`);
    ``z_prev`` the previous z_bg (..., B, Dbg), None at t = 0; ``h`` the transition GRU's state
    (B, Hd) or (..., B, Hd). 'learned' after t = 0: loc and scale (..., B, Dbg) from the GRU
    transition (:class:`pyro_scalor.model.nets.BackgroundTransition`) and its new state;
    otherwise a standard normal of the state's batch shape (B, ``dim``), state unchanged.
    """
    if kind == "learned" and z_prev is not None:
        return apply_flat(transition, z_prev, h)
    loc, scale = _standard(h.new_zeros(h.shape[:-1] + (dim,)))
    return loc, scale, h
