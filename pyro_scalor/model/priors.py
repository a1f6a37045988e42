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
``velocity`` equals ``learned``. ``constant-velocity`` (also a project addition) is ``velocity``
without the tracker's correction of the centre and with what's mean the previous what: an
imagined object moves on at the velocity estimated from its past and keeps its shape. What the
motion is (``ModelConfig.motion_estimate``, :func:`carry_motion`): 'exponential', an
exponential average of the object's where changes (``velocity_smoothing`` 0: the last one);
'least-squares', the slope of a least-squares line through its last ``velocity_window`` + 1
boxes; 'drawn', that slope through where the object was drawn (:func:`observe_drawn`), since
the decoder may draw an object off its box's centre by a different amount each frame. ``fixed``
is a standard normal. All of them read the same tracker outputs (the tracker's inputs do not
include the motion), so the parameters, and checkpoints, are the same whichever is chosen.

Background priors (``ModelConfig.background_prior``) give p(z_bg_t | z_bg_<t): ``learned`` is a
GRU transition from the previous z_bg (the paper's background transition), ``fixed`` a standard
normal; at t = 0 both are a standard normal.
"""

from __future__ import annotations

import dataclasses

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


def constant_velocity_transition(
    tracker_out: dict, prev_what: torch.Tensor, prev_depth: torch.Tensor, prev_motion: torch.Tensor
):
    """An object moves on at the velocity estimated from its past and keeps its appearance: the
    mean of the centre's change is the carried motion alone (no tracker correction, unlike
    :func:`velocity_transition`) and the mean of what is the previous what (no learned
    residual); the scale's change and depth as in :func:`velocity_transition`, every scale the
    tracker's. With the 'drawn' estimate it is how the ``cpu-default`` main job imagines frames
    (``TrackingConfig.imagine_transition_prior``): on the main command's checkpoint, 5+5
    generation with the means imagined 2.31 px at step 5 against 2.76 px with the trained
    'velocity' and exponential average, 2.92 px with the least-squares slope of the glimpse
    boxes and 3.18 px for 'velocity' (its correction) on the drawn motion. Keeping what's mean
    keeps an imagined object's shape: 0.81 px at step 1 against 0.93 px with the learned
    residual, 2.31 against 2.26 px at step 5 (experiments/generation/)."""
    priors = learned_transition(tracker_out, prev_what, prev_depth, prev_motion)
    where_loc, where_scale = tracker_out["where"]
    priors["where"] = (torch.cat([where_loc[..., :2], prev_motion[..., 2:]], -1), where_scale)
    priors["what"] = (prev_what, priors["what"][1])
    return priors


def carried_motion(
    smoothing: float, prev_motion: torch.Tensor, prev_discovered: torch.Tensor, where: torch.Tensor
) -> torch.Tensor:
    """The exponentially averaged motion an object carries to its next frame, (..., K, 4).

    ``smoothing`` 0: the where change just sampled, ``where`` (the change the ``velocity``
    prior centres the next one on). Above 0: an exponential average, ``smoothing *
    prev_motion + (1 - smoothing) * where``, so the next change is centred on the object's
    recent velocity rather than its last, jittery, displacement; an object discovered at the
    previous frame (``prev_discovered`` (..., K)) has no motion yet and carries ``where``."""
    if smoothing <= 0:
        return where
    keep = torch.where(prev_discovered, 0.0, smoothing).unsqueeze(-1).to(where.dtype)
    return keep * prev_motion + (1 - keep) * where


def least_squares_weights(moves: torch.Tensor, window: int) -> torch.Tensor:
    """Weights (..., W) that turn an object's last W changes (oldest first) into the slope of
    the least-squares line through the ``moves`` + 1 positions they join (``moves`` (...) in
    0..W; the first W - moves entries are not real and get 0).

    The slope of that line through positions p_0..p_m is sum_i w_i (p_i - p_(i-1)) with
    w_i = 6 i (m + 1 - i) / (m (m + 1) (m + 2)): for m = 4 changes, 0.2 / 0.3 / 0.3 / 0.2,
    where the last change alone (weight 1) carries the noise of two positions. An object with
    no change yet gets all zeros."""
    m = moves.unsqueeze(-1)
    i = torch.arange(1, window + 1, device=moves.device, dtype=moves.dtype) - (window - m)
    w = 6 * i * (m + 1 - i) / (m * (m + 1) * (m + 2)).clamp(min=1)
    return torch.where(i >= 1, w, torch.zeros_like(w))


def carry_motion(cfg, prev, where: torch.Tensor) -> dict[str, torch.Tensor]:
    """The motion state a propagated object carries to its next frame: ``{"motion", "history",
    "moves", "drawn"}`` for :class:`pyro_scalor.model.slots.Slots`.

    ``prev`` holds the previous frame's slots, ``where`` (..., K, 4) the where change just
    sampled. ``ModelConfig.motion_estimate`` picks the motion the ``velocity`` prior centres
    the next change on: 'exponential', :func:`carried_motion` with
    ``ModelConfig.velocity_smoothing``; 'least-squares', the slope of the least-squares line
    through the object's last ``velocity_window`` + 1 boxes (:func:`least_squares_weights`),
    the best estimate of a constant velocity from noisy positions: the history takes in
    ``where`` (an object discovered at the previous frame starts it afresh); 'drawn', the same
    slope through the centres of the object as drawn, which :func:`observe_drawn` records once
    the frame's objects are decoded (so here the state passes on unchanged). Only
    'least-squares' updates the history here; the other estimates pass it on as it is. Model
    and guide both call this, so their states agree."""
    lead = where.shape[:-1]
    window = prev.history.shape[-2]
    state = {
        "motion": prev.motion.expand(lead + (4,)),
        "history": prev.history.expand(lead + (window, 4)),
        "moves": prev.moves.expand(lead),
        "drawn": prev.drawn.expand(lead + (8,)),
    }
    if cfg.motion_estimate == "exponential":
        state["motion"] = carried_motion(
            cfg.velocity_smoothing, prev.motion, prev.discovered, where
        )
    elif cfg.motion_estimate == "least-squares":
        fresh = prev.discovered.unsqueeze(-1).unsqueeze(-1)
        history = torch.where(fresh, 0.0, state["history"]).to(where.dtype)
        history = torch.cat([history[..., 1:, :], where.unsqueeze(-2)], -2)
        moves = torch.where(prev.discovered, 0.0, prev.moves).to(where.dtype)
        moves = (moves + 1).clamp(max=window).expand(lead)
        weights = least_squares_weights(moves, window).to(where.dtype)
        state.update(motion=(weights.unsqueeze(-1) * history).sum(-2), history=history, moves=moves)
    return state


def drawn_extent(box: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Where objects are drawn, (..., K, 6): their extent ``(x_min, y_min, x_max, y_max)`` and
    their alpha's centroid ``(x, y)``, in image coordinates, not clipped to the view. The
    extent is where the decoded alpha (..., K, 1, g, g), read along each axis at its largest
    value, crosses 0.5 (interpolated between glimpse pixels); both are placed in the boxes
    (..., K, 4) ``(sx, sy, cx, cy)``. Read without gradients (the box keeps its own); an empty
    glimpse gives the box's extent and centre."""
    a = alpha.detach().squeeze(-3)
    g = a.shape[-1]
    sides = []
    for profile in (a.amax(-2), a.amax(-1)):  # along x (columns), along y (rows)
        above = profile > 0.5
        first = above.to(a.dtype).argmax(-1, keepdim=True)
        last = g - 1 - above.flip(-1).to(a.dtype).argmax(-1, keepdim=True)
        inner_lo, inner_hi = profile.gather(-1, first), profile.gather(-1, last)
        outer_lo = profile.gather(-1, (first - 1).clamp(min=0))
        outer_hi = profile.gather(-1, (last + 1).clamp(max=g - 1))
        # glimpse-pixel centres sit at i + 0.5 of [0, g]; a crossing at the glimpse's border
        # is the border itself
        lo = first - 0.5 + (0.5 - outer_lo) / (inner_lo - outer_lo).clamp(min=1e-6)
        hi = last + 0.5 + (inner_hi - 0.5) / (inner_hi - outer_hi).clamp(min=1e-6)
        lo = torch.where(first == 0, torch.zeros_like(lo), lo)
        hi = torch.where(last == g - 1, torch.full_like(hi, g), hi)
        empty = ~above.any(-1, keepdim=True)
        lo = torch.where(empty, torch.zeros_like(lo), lo)
        hi = torch.where(empty, torch.full_like(hi, g), hi)
        sides.append(torch.cat([lo, hi], -1) * (2 / g) - 1)  # (..., K, 2) in [-1, 1] of the box
    (x_lo, x_hi), (y_lo, y_hi) = (s.unbind(-1) for s in sides)
    unit = torch.stack([x_lo, y_lo, x_hi, y_hi], -1)
    scale = torch.cat([box[..., :2], box[..., :2]], -1)
    centre = torch.cat([box[..., 2:], box[..., 2:]], -1)
    axis = (2 * torch.arange(g, device=a.device, dtype=a.dtype) + 1) / g - 1
    mass = a.sum((-1, -2)).clamp(min=1e-6)
    offset = torch.stack([(a.sum(-2) * axis).sum(-1), (a.sum(-1) * axis).sum(-1)], -1)
    centroid = box[..., 2:] + box[..., :2] * offset / mass.unsqueeze(-1)
    return torch.cat([centre + scale * unit, centroid], -1)


def drawn_change(prev: torch.Tensor, now: torch.Tensor, image_size: int) -> torch.Tensor:
    """How far an object moved between two frames, (..., K, 2), from its drawn extents and
    centroids (..., K, 6) (:func:`drawn_extent`). Per axis: the centroid's move where both of
    the object's sides on that axis lie inside the view at both frames (more than one image
    pixel from its border); where only one does, that side's move; else the centroid's. A side
    at the border is where the view cuts the object (or where an object drawn only as far as
    the view reaches ends): it does not move with the object, and neither does the centroid of
    a part of it, so an object entering or leaving the view is followed by its other side."""
    inner = 1 - 2 / image_size
    seen = torch.cat([now[..., :2] > -inner, now[..., 2:4] < inner], -1)
    seen = seen & torch.cat([prev[..., :2] > -inner, prev[..., 2:4] < inner], -1)
    move = now - prev
    lo, hi = move[..., :2], move[..., 2:4]
    lo_seen, hi_seen = seen[..., :2], seen[..., 2:]
    one = torch.where(lo_seen, lo, hi)
    return torch.where(lo_seen == hi_seen, move[..., 4:], one)


def observe_drawn(cfg, slots, alpha: torch.Tensor, observed: bool = True):
    """With ``motion_estimate`` 'drawn': ``slots`` (..., K) after a frame's merge, their motion
    state updated from their decoded ``alpha`` (..., K, 1, g, g); otherwise ``slots`` as they
    are.

    The glimpse box is not where an object is: the decoder may draw the object off the box's
    centre, by a different amount each frame, since z_what can hold the offset (on a
    ``cpu-default`` main command trained with 'least-squares' the box centres of objects clear
    of the view's edges strayed 0.4-1.1 px per frame from their true track, the drawn objects'
    0.2-0.7 px). And where the view cuts an object, the part in view does not move with it. So
    at an ``observed`` frame the motion is estimated from the objects as drawn
    (:func:`drawn_extent`, :func:`drawn_change`: the centroid, or the side the view does not
    cut): each propagated object's history takes in its move since the previous frame, in image
    units (a newly discovered object starts with none), and its motion is the least-squares
    slope of that history (:func:`least_squares_weights`) as a where-change latent,
    ``atanh(slope / max_motion)``, so the transition prior moves the box by the drawn object's
    velocity. An imagined frame (``observed`` False: generated, with no image behind it) has
    no drawing to correct: the object moved with its box, so its history takes in the box
    centre's move and what it was drawn as moves with it (a shape sampled anew would otherwise
    feed its noise into the velocity). Measured on the ``cpu-default`` main command's
    checkpoint imagining with 'constant-velocity', 5+5 with the means: 2.31 px at step 5,
    against 2.45 px reading the centroid also where the view cuts the object and 2.35 px
    measuring the imagined drawings; with full noise on a checkpoint trained with
    'constant-velocity', 4.34 px against 4.72 px measuring them (experiments/generation/).
    Model and guide both call this on the same decode, so their states agree."""
    if cfg.motion_estimate != "drawn":
        return slots
    centre = slots.box[..., 2:]
    lead = centre.shape[:-1]
    window = slots.history.shape[-2]
    new = slots.discovered.expand(lead)
    prev = slots.drawn.expand(lead + (8,))
    if observed:
        drawn = torch.cat([drawn_extent(slots.box, alpha), centre], -1)
        change = drawn_change(prev[..., :6], drawn[..., :6], cfg.image_size)
    else:
        change = centre - prev[..., 6:]
        drawn = torch.cat([prev[..., :6] + torch.cat([change] * 3, -1), centre], -1)
    change = torch.cat([torch.zeros_like(change), change], -1)
    history = torch.cat(
        [slots.history.expand(lead + (window, 4))[..., 1:, :], change.unsqueeze(-2)], -2
    )
    history = torch.where(new[..., None, None], 0.0, history)
    moves = torch.where(new, 0.0, (slots.moves + 1).clamp(max=window).expand(lead))
    slope = (least_squares_weights(moves, window).unsqueeze(-1) * history).sum(-2)
    limit = 0.999
    motion = torch.atanh((slope / cfg.max_motion).clamp(-limit, limit))
    return dataclasses.replace(slots, motion=motion, history=history, moves=moves, drawn=drawn)


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
    "constant-velocity": constant_velocity_transition,
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
