"""Swappable priors of the generative model, chosen by name in :class:`ModelConfig`.

Object transition priors (``ModelConfig.transition_prior``) give p(where, what, depth of a
propagated object | its tracker state, its previous latents). A propagated object's where is a
change of its box (:meth:`pyro_scalor.model.geometry.BoxCoder.propagation`). ``learned`` is the
paper's transition: the tracker GRU gives the where change, and what and depth as residuals of
the previous values. ``velocity`` (a project addition) keeps what and depth as in ``learned``
but centres the where change on the object's previous one (``Slots.motion``) plus the tracker's
learned correction, with the tracker's scale (the centre's change only: the scale change's mean
is the tracker's). Its use is generation: an object keeps its last displacement unless the
tracker corrects it, so imagined objects keep moving without growing or shrinking. Under
``learned`` the where change comes from the GRU state alone, which does not carry the previous
displacement explicitly: refit on a frozen guide, 'learned' imagined a 6.6 px centre error at
step 5 of 5+5 generation and 'velocity' 3.8 px (constant-velocity extrapolation 4.5,
experiments/generation). A new object's previous change is zero, so at its first propagation
``velocity`` equals ``learned``. With ``ModelConfig.velocity_smoothing`` above 0 the motion
an object carries is an exponential average of its changes (:func:`carried_motion`), so the
next change is centred on its recent velocity rather than on its last, jittery, change.
``fixed`` is a standard normal. All three read the same tracker
outputs (the tracker's inputs do not include the motion), so the parameters, and checkpoints,
are the same whichever is chosen.

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


def learned_transition(
    tracker_out: dict, prev_what: torch.Tensor, prev_depth: torch.Tensor, prev_motion: torch.Tensor
):
    """Learned transition (the paper's): where change, what and depth residuals from the tracker
    state. ``tracker_out`` is :class:`pyro_scalor.model.nets.PriorTracker`'s output, each
    ``(loc, scale)`` (..., K, D); ``prev_what`` (..., K, Dw), ``prev_depth`` (..., K, 1) and
    ``prev_motion`` (..., K, 4) (unused here) the object's previous latents. Returns
    ``{"where", "what", "depth"}`` of ``(loc, scale)``."""
    what_loc, what_scale = tracker_out["what"]
    depth_loc, depth_scale = tracker_out["depth"]
    return {
        "where": tracker_out["where"],
        "what": (prev_what + what_loc, what_scale),
        "depth": (prev_depth + depth_loc, depth_scale),
    }


def velocity_transition(
    tracker_out: dict, prev_what: torch.Tensor, prev_depth: torch.Tensor, prev_motion: torch.Tensor
):
    """Constant-velocity transition: the mean of the where change's centre part is the previous
    one (``prev_motion[..., 2:]``) plus the tracker's correction, and the scale part's is the
    tracker's alone (objects keep moving, not growing), with the tracker's scale; what and depth
    as in :func:`learned_transition` (same arguments and result)."""
    priors = learned_transition(tracker_out, prev_what, prev_depth, prev_motion)
    where_loc, where_scale = tracker_out["where"]
    velocity = torch.cat([torch.zeros_like(prev_motion[..., :2]), prev_motion[..., 2:]], -1)
    priors["where"] = (velocity + where_loc, where_scale)
    return priors


def carried_motion(
    smoothing: float, prev_motion: torch.Tensor, prev_discovered: torch.Tensor, where: torch.Tensor
) -> torch.Tensor:
    """The motion an object carries to its next frame (``Slots.motion``), (..., K, 4).

    ``smoothing`` 0: the where change just sampled, ``where`` (the change the ``velocity``
    prior centres the next one on). Above 0: an exponential average, ``smoothing *
    prev_motion + (1 - smoothing) * where``, so the next change is centred on the object's
    recent velocity rather than its last, jittery, displacement; an object discovered at the
    previous frame (``prev_discovered`` (..., K)) has no motion yet and carries ``where``.
    Model and guide both call this, so their states agree."""
    if smoothing <= 0:
        return where
    keep = torch.where(prev_discovered, 0.0, smoothing).unsqueeze(-1).to(where.dtype)
    return keep * prev_motion + (1 - keep) * where


def fixed_transition(
    tracker_out: dict, prev_what: torch.Tensor, prev_depth: torch.Tensor, prev_motion: torch.Tensor
):
    """Fixed transition: standard normal priors for where change, what and depth (the previous
    latents are unused)."""
    return {k: _standard(tracker_out[k][0]) for k in ("where", "what", "depth")}


#: The object transition priors by ``ModelConfig.transition_prior``; each is called as
#: ``fn(tracker_out, prev_what, prev_depth, prev_motion)``.
TRANSITIONS = {
    "learned": learned_transition,
    "velocity": velocity_transition,
    "fixed": fixed_transition,
}


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
