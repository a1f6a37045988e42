"""Swappable priors of the generative model, chosen by name in :class:`ModelConfig`.

Transition priors give p(where, what, depth of a propagated object | its tracker state):
``learned`` uses the tracker GRU (what and depth as residuals of the previous values), ``fixed``
is a standard normal. (The background prior, ``learned`` GRU transition or ``fixed`` standard
normal, is chosen by ``ModelConfig.background_prior`` in the model's ``_background``.)
"""

from __future__ import annotations

import torch

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
