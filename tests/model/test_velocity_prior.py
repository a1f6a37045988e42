"""The 'velocity' transition prior: its where mean is the previous where change plus the
tracker's correction, the slots carry that change (``Slots.motion``), and model and guide still
align."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pyro.poutine as poutine
import pytest
import torch
from pyro.infer import Trace_ELBO
from pyro.poutine.util import site_is_subsample

from pyro_scalor.api import Scalor
from pyro_scalor.model import sites
from pyro_scalor.model.handlers import NoiseScale
from pyro_scalor.model.priors import (
    TRANSITIONS,
    carried_motion,
    carry_motion,
    constant_velocity_transition,
    drawn_change,
    drawn_extent,
    fixed_transition,
    learned_transition,
    least_squares_weights,
    observe_drawn,
    velocity_transition,
)
from pyro_scalor.model.slots import Slots, merge
from tests.conftest import make_video

# the model/guide tests' seeded, validating set-up (an autouse fixture) and tiny Scalor builder
from tests.model.test_program import _seeded_and_validating, scalor_for  # noqa: F401


# ------------------------------------------------------------------------------------------
# 1. the transition function
def tracker_out(where_loc: torch.Tensor) -> dict:
    """A tracker output for (B=1, K=2) objects with z_what of 3 and the given where loc."""
    return {
        "where": (where_loc, torch.tensor([[[0.5, 0.6, 0.7, 0.8], [0.1, 0.2, 0.3, 0.4]]])),
        "what": (torch.tensor([[[1.0, -1.0, 2.0], [0.5, 0.0, -0.5]]]), torch.full((1, 2, 3), 0.3)),
        "depth": (torch.tensor([[[0.25], [-0.75]]]), torch.full((1, 2, 1), 0.2)),
    }


PREV_WHAT = torch.tensor([[[3.0, 2.0, 1.0], [-1.0, -2.0, -3.0]]])
PREV_DEPTH = torch.tensor([[[1.0], [2.0]]])
MOTION = torch.tensor([[[0.1, -0.2, 0.3, -0.4], [1.5, 0.0, -2.0, 0.25]]])


def test_velocity_where_mean_is_the_previous_motion_plus_the_correction():
    assert TRANSITIONS["velocity"] is velocity_transition
    # no correction: the where mean is the previous motion's centre part (the scale part's is
    # zero), with the tracker's scale
    out = tracker_out(torch.zeros(1, 2, 4))
    loc, scale = velocity_transition(out, PREV_WHAT, PREV_DEPTH, MOTION)["where"]
    torch.testing.assert_close(loc, torch.tensor([[[0, 0, 0.3, -0.4], [0, 0, -2.0, 0.25]]]))
    torch.testing.assert_close(scale, out["where"][1], rtol=0, atol=0)
    # a correction c: motion + c, computed by hand
    c = torch.tensor([[[0.5, 0.5, -0.5, 1.0], [-1.0, 2.0, 0.5, 0.0]]])
    out = tracker_out(c)
    pri = velocity_transition(out, PREV_WHAT, PREV_DEPTH, MOTION)
    expected = torch.tensor([[[0.5, 0.5, -0.2, 0.6], [-1.0, 2.0, -1.5, 0.25]]])
    torch.testing.assert_close(pri["where"][0], expected)
    # what and depth exactly as 'learned': residuals of the previous values
    learned = learned_transition(out, PREV_WHAT, PREV_DEPTH, MOTION)
    for role in ("what", "depth"):
        for a, b in zip(pri[role], learned[role], strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(pri["what"][0], PREV_WHAT + out["what"][0])
    torch.testing.assert_close(pri["depth"][0], PREV_DEPTH + out["depth"][0])
    # 'learned' ignores the motion; 'fixed' is a standard normal whatever it is
    torch.testing.assert_close(learned["where"][0], c, rtol=0, atol=0)
    for loc, scale in fixed_transition(out, PREV_WHAT, PREV_DEPTH, MOTION).values():
        assert (loc == 0).all() and (scale == 1).all()


# ------------------------------------------------------------------------------------------
# 2. constant velocity is extrapolated through the model's propagation
START_BOX = torch.tensor([[0.15, 0.15, -0.5, 0.1], [0.2, 0.1, 0.3, -0.2]])
START_LOGIT = torch.tensor([[0.0, 0.0], [0.4, -0.3]])
START_MOTION = torch.tensor([[0.0, 0.0, 0.3, -0.2], [0.4, -0.3, -0.5, 0.25]])


def propagate_at_prior_means(prior: str, n_frames: int, **overrides) -> tuple[list[Slots], Scalor]:
    """Propagate two present objects (of four slots) ``n_frames`` frames with every Gaussian
    latent at its prior mean, the prior tracker's where loc zeroed (its other outputs random)."""
    s = scalor_for(transition_prior=prior, **overrides)
    cfg = s.config
    trans = s.nets.prior_tracker.trans
    with torch.no_grad():
        trans.weight.normal_(0.0, 0.5)
        trans.bias.normal_(0.0, 0.5)
        trans.weight[:4].zero_()  # the where loc is the first 4 outputs
        trans.bias[:4].zero_()
    slots = Slots.empty(
        (1,), cfg.max_objects, cfg.z_what_dim, cfg.hidden_dim, window=cfg.velocity_window
    )
    slots.pres[0, :2] = 1.0
    slots.box[0, :2] = START_BOX
    slots.logit[0, :2] = START_LOGIT
    slots.motion[0, :2] = START_MOTION
    slots.what[0, :2] = torch.randn(2, cfg.z_what_dim)
    model = s.model
    plates = model._plates(1, torch.device("cpu"))
    out = []
    with torch.no_grad(), NoiseScale(0.0):
        for t in range(1, n_frames + 1):
            slots = model._propagate(t, slots, plates, temperature=1.0)
            out.append(slots)
    return out, s


def test_velocity_prior_extrapolates_constant_velocity():
    frames, s = propagate_at_prior_means("velocity", 4)
    cfg = s.config
    for n, slots in enumerate(frames, start=1):
        for k in range(2):
            m = START_MOTION[k].tolist()
            c0 = START_BOX[k, 2:].tolist()
            centre = [c0[i] + n * cfg.max_motion * math.tanh(m[2 + i]) for i in range(2)]
            torch.testing.assert_close(slots.box[0, k, 2:], torch.tensor(centre), atol=1e-5, rtol=0)
            # the scale keeps its size: only the centre carries velocity
            torch.testing.assert_close(slots.logit[0, k], START_LOGIT[k], atol=1e-5, rtol=0)
            moving = torch.tensor([0.0, 0.0, m[2], m[3]])
            torch.testing.assert_close(slots.motion[0, k], moving, atol=1e-6, rtol=0)
    # the what mean moved (the tracker's other outputs are not zero): only where is pinned
    assert not torch.allclose(frames[0].what, frames[1].what)


def test_smoothed_motion_is_an_exponential_average_from_the_first_change():
    prev = torch.tensor([[0.2, 0.4, 1.0, -1.0], [0.2, 0.4, 1.0, -1.0]])
    where = torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
    discovered = torch.tensor([False, True])
    out = carried_motion(0.5, prev, discovered, where)
    # tracked: halfway; discovered at the previous frame: its first change, as it is
    torch.testing.assert_close(out, torch.tensor([[0.1, 0.2, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0]]))
    assert carried_motion(0.0, prev, discovered, where) is where
    with pytest.raises(ValueError, match="velocity_smoothing"):
        scalor_for(velocity_smoothing=1.0)


def test_smoothed_velocity_prior_still_extrapolates_constant_velocity():
    # the average of a constant change is that change: the same straight lines as unsmoothed
    plain, _ = propagate_at_prior_means("velocity", 3)
    smooth, _ = propagate_at_prior_means("velocity", 3, velocity_smoothing=0.7)
    # the model carries the average: after one frame 0.7 of the start's motion and 0.3 of the
    # move (the move is the unsmoothed run's motion; the scale part's move is 0, the start's not)
    start = plain[0].motion.clone()
    start[0, :2] = START_MOTION
    expected = 0.7 * start + 0.3 * plain[0].motion
    torch.testing.assert_close(smooth[0].motion[0, :2], expected[0, :2], atol=1e-6, rtol=0)
    assert not torch.allclose(smooth[0].motion[0, :2, :2], plain[0].motion[0, :2, :2])
    for a, b in zip(plain, smooth, strict=True):
        torch.testing.assert_close(a.box, b.box, atol=1e-6, rtol=0)
        # the centre part (the part the prior uses); the scale part is averaged with the
        # start's, which the prior does not read
        torch.testing.assert_close(a.motion[..., 2:], b.motion[..., 2:], atol=1e-6, rtol=0)


def test_least_squares_weights_by_hand():
    w = least_squares_weights(torch.tensor([4.0, 3.0, 2.0, 1.0, 0.0]), 4)
    expected = torch.tensor(
        [
            [0.2, 0.3, 0.3, 0.2],  # 6 i (5 - i) / 120
            [0.0, 0.3, 0.4, 0.3],  # 6 i (4 - i) / 60
            [0.0, 0.0, 0.5, 0.5],
            [0.0, 0.0, 0.0, 1.0],
            [0.0, 0.0, 0.0, 0.0],  # no change yet: no motion
        ]
    )
    torch.testing.assert_close(w, expected)


def motion_slots(motion, history, moves, discovered):
    """The motion fields :func:`carry_motion` reads, for objects (K,)."""
    return SimpleNamespace(
        motion=torch.as_tensor(motion, dtype=torch.float32),
        history=torch.as_tensor(history, dtype=torch.float32),
        moves=torch.as_tensor(moves, dtype=torch.float32),
        discovered=torch.as_tensor(discovered),
        drawn=torch.zeros(len(discovered), 8),
    )


def test_least_squares_motion_is_the_slope_of_the_line_through_the_positions():
    # one object's x centre at 5 frames, a line with hand-made jitter; its 4 changes fed one at
    # a time give the slope numpy's least-squares fit gives, not the last change
    xs = np.array([0.10, 0.23, 0.28, 0.41, 0.47])
    cfg = SimpleNamespace(motion_estimate="least-squares", velocity_smoothing=0.0)
    slots = motion_slots(torch.zeros(1, 4), torch.zeros(1, 4, 4), [0.0], [True])
    for t in range(1, 5):
        where = torch.zeros(1, 4)
        where[0, 2] = float(xs[t] - xs[t - 1])
        out = carry_motion(cfg, slots, where)
        slots = motion_slots(out["motion"], out["history"], out["moves"], [False])
        slope = np.polyfit(np.arange(t + 1), xs[: t + 1], 1)[0]
        assert out["moves"].item() == t
        assert out["motion"][0, 2].item() == pytest.approx(slope, abs=1e-6)
    assert slope == pytest.approx(0.092) and xs[4] - xs[3] == pytest.approx(0.06)
    # a fifth change slides the window: the line through the last 5 positions
    where = torch.zeros(1, 4)
    where[0, 2] = 0.2
    out = carry_motion(cfg, slots, where)
    slope = np.polyfit(np.arange(5), np.append(xs[1:], xs[4] + 0.2), 1)[0]
    assert out["moves"].item() == 4
    assert out["motion"][0, 2].item() == pytest.approx(slope, abs=1e-6)


def test_carried_history_restarts_for_a_new_object_and_exponential_keeps_its_average():
    hist = torch.arange(16.0).reshape(1, 4, 4).expand(2, 4, 4)
    slots = motion_slots(torch.ones(2, 4), hist, [4.0, 4.0], [False, True])
    where = torch.full((2, 4), -1.0)
    lsq = carry_motion(SimpleNamespace(motion_estimate="least-squares"), slots, where)
    # tracked: the oldest change leaves, the new one comes in; new: only the new one
    torch.testing.assert_close(lsq["history"][0], torch.cat([hist[0, 1:], where[:1]]))
    torch.testing.assert_close(lsq["history"][1, 3], where[1])
    assert not lsq["history"][1, :3].any()
    assert lsq["moves"].tolist() == [4.0, 1.0]
    torch.testing.assert_close(lsq["motion"][1], where[1])
    exp = carry_motion(
        SimpleNamespace(motion_estimate="exponential", velocity_smoothing=0.5), slots, where
    )
    torch.testing.assert_close(exp["motion"], torch.tensor([[0.0] * 4, [-1.0] * 4]))
    # the exponential average keeps no history: it passes on as it was
    torch.testing.assert_close(exp["history"], hist, rtol=0, atol=0)
    assert exp["moves"].tolist() == [4.0, 4.0]


def test_least_squares_velocity_prior_still_extrapolates_constant_velocity():
    plain, _ = propagate_at_prior_means("velocity", 4)
    lsq, s = propagate_at_prior_means("velocity", 4, motion_estimate="least-squares")
    assert s.config.velocity_window == 4
    for a, b in zip(plain, lsq, strict=True):
        torch.testing.assert_close(a.box, b.box, atol=1e-6, rtol=0)
        torch.testing.assert_close(a.motion[..., 2:], b.motion[..., 2:], atol=1e-6, rtol=0)
    assert lsq[-1].moves[0, :2].tolist() == [4.0, 4.0]
    with pytest.raises(ValueError, match="motion_estimate"):
        scalor_for(motion_estimate="kalman")
    with pytest.raises(ValueError, match="velocity_window"):
        scalor_for(velocity_window=0)


def test_constant_velocity_transition_drops_the_centre_correction_and_keeps_what():
    c = torch.tensor([[[0.5, 0.5, -0.5, 1.0], [-1.0, 2.0, 0.5, 0.0]]])
    out = tracker_out(c)
    pri = constant_velocity_transition(out, PREV_WHAT, PREV_DEPTH, MOTION)
    # the scale's change keeps the tracker's mean; the centre's is the motion alone
    expected = torch.tensor([[[0.5, 0.5, 0.3, -0.4], [-1.0, 2.0, -2.0, 0.25]]])
    torch.testing.assert_close(pri["where"][0], expected, rtol=0, atol=0)
    torch.testing.assert_close(pri["where"][1], out["where"][1], rtol=0, atol=0)
    vel = velocity_transition(out, PREV_WHAT, PREV_DEPTH, MOTION)
    torch.testing.assert_close(pri["depth"][0], vel["depth"][0], rtol=0, atol=0)
    # what keeps its previous value as its mean (no learned residual), with the tracker's scale
    torch.testing.assert_close(pri["what"][0], PREV_WHAT, rtol=0, atol=0)
    torch.testing.assert_close(pri["what"][1], vel["what"][1], rtol=0, atol=0)
    assert not torch.equal(vel["what"][0], PREV_WHAT), "the case cannot tell the two apart"
    assert TRANSITIONS["constant-velocity"] is constant_velocity_transition


def test_drawn_extent_and_centroid_by_hand():
    # 4x4 glimpses: pixel centres at -0.75, -0.25, 0.25, 0.75 of the box's half-sides, pixel
    # edges at -1, -0.5, 0, 0.5, 1
    alpha = torch.zeros(4, 1, 4, 4)
    alpha[0, 0, 0, 3] = 1.0  # one pixel: top row, right column
    alpha[1, 0, 1, 1] = alpha[1, 0, 1, 2] = 0.5  # at 0.5, not above it: nothing is drawn
    alpha[1, 0, 2, 1] = 1.0  # one pixel, second column, third row
    alpha[3, 0, 1:3, 1] = 0.75  # a column at 0.75 between zeros: crosses 0.5 a third inside
    box = torch.tensor(
        [[0.2, 0.1, 0.1, -0.3], [0.2, 0.2, 0.0, 0.0], [0.3, 0.3, 0.4, 0.5], [0.2, 0.2, 0.0, 0.0]]
    )
    drawn = drawn_extent(box, alpha)
    expected = torch.tensor(
        [
            # x from 0.5 to 1 (the glimpse's border), y from -1 to -0.5; centroid at the pixel
            [0.2, -0.4, 0.3, -0.35, 0.1 + 0.2 * 0.75, -0.3 - 0.1 * 0.75],
            # x: in at pixel 1's left edge; the profile falls from 1 to 0.5 at pixel 2's centre
            # (0.25); y: in at pixel 2's left edge (0.5 at the centre before), out at its right
            # edge; the centroid of masses 1.5 at x -0.25 and 0.5 at 0.25, equal in y
            [-0.1, -0.05, 0.05, 0.1, -0.025, 0.0],
            [0.1, 0.2, 0.7, 0.8, 0.4, 0.5],  # an empty glimpse: the box's extent and centre
            # 0.75 between zeros crosses 0.5 two thirds of a pixel from the zero's centre: x
            # from -5/12 to -1/12, y (two rows) from -5/12 to 5/12, times the half-side 0.2
            [-1 / 12, -1 / 12, -1 / 60, 1 / 12, -0.05, 0.0],
        ]
    )
    torch.testing.assert_close(drawn, expected)


def test_drawn_change_follows_the_side_the_view_does_not_cut():
    size = 64  # one pixel is 2 / 64 of the view; a side within it of the border is cut
    prev = torch.tensor(
        [
            [-0.5, -0.2, -0.3, 0.0, -0.4, -0.1],  # inside the view
            [-1.2, 0.1, -0.8, 0.3, -1.0, 0.2],  # cut at the left: x follows the right side
            [0.9, -1.0, 1.0, -0.7, 0.95, -0.85],  # drawn up to the right and top borders
            [-1.2, -1.2, 1.2, 1.2, 0.0, 0.0],  # larger than the view: the centroid
        ]
    )
    now = prev + torch.tensor(
        [
            [0.02, 0.02, 0.04, 0.04, 0.03, 0.01],
            [0.05, 0.0, 0.06, 0.0, 0.07, 0.0],
            [-0.05, 0.0, 0.0, 0.02, -0.03, 0.01],
            [0.1, 0.1, 0.1, 0.1, 0.02, 0.03],
        ]
    )
    expected = torch.tensor([[0.03, 0.01], [0.06, 0.0], [-0.05, 0.02], [0.02, 0.03]])
    torch.testing.assert_close(drawn_change(prev, now, size), expected)


def drawn_slots(box, discovered, **state):
    """Merged slots (K,) for :func:`observe_drawn`: boxes, discovered flags and motion state."""
    k = len(discovered)
    s = Slots.empty((), k, 1, 1, window=4)
    s.box = torch.as_tensor(box, dtype=torch.float32)
    s.discovered = torch.as_tensor(discovered)
    for name, value in state.items():
        setattr(s, name, value)
    return s


def test_observe_drawn_fits_the_drawn_moves_and_restarts_new_objects():
    cfg = SimpleNamespace(motion_estimate="drawn", max_motion=0.2, image_size=64)
    alpha = torch.zeros(2, 1, 4, 4)
    alpha[:, 0, 1:3, 1:3] = 1.0  # drawn at the box centre
    xs = [0.0, 0.02, 0.05]  # object 0's x centre over three frames; object 1 is new each time
    state = {}
    for t, x in enumerate(xs):
        box = [[0.1, 0.1, x, 0.3], [0.1, 0.1, -0.4, -0.4]]
        s = observe_drawn(cfg, drawn_slots(box, [t == 0, True], **state), alpha)
        state = {k: getattr(s, k) for k in ("motion", "history", "moves", "drawn")}
        drawn = [
            [x - 0.05, 0.25, x + 0.05, 0.35] + [x, 0.3] * 2,
            [-0.45, -0.45, -0.35, -0.35] + [-0.4] * 4,
        ]
        torch.testing.assert_close(s.drawn, torch.tensor(drawn))
        assert s.moves.tolist() == [float(t), 0.0]
        assert not s.history[1].any() and not s.motion[1].any()
    # two changes, 0.02 and 0.03: the least-squares slope is their mean, 0.025, as a latent
    slope = torch.tensor([0.0, 0.0, math.atanh(0.025 / 0.2), 0.0])
    torch.testing.assert_close(s.motion[0], slope)
    torch.testing.assert_close(s.history[0, -2:, 2], torch.tensor([0.02, 0.03]))
    # other estimates leave the slots as they are
    same = drawn_slots([[0.1, 0.1, 0.0, 0.0]] * 2, [False, False])
    assert observe_drawn(SimpleNamespace(motion_estimate="least-squares"), same, alpha) is same


def test_an_imagined_frame_moves_the_drawing_with_the_box():
    cfg = SimpleNamespace(motion_estimate="drawn", max_motion=0.2, image_size=64)
    alpha = torch.zeros(1, 1, 4, 4)
    alpha[:, 0, 1:3, 0:2] = 1.0  # drawn left of the box centre
    s = observe_drawn(cfg, drawn_slots([[0.1, 0.1, 0.0, 0.0]], [True]), alpha)
    # imagined: the box moved by (0.04, -0.02) and the drawing (any shape) goes with it
    s = dataclasses.replace(
        s, box=torch.tensor([[0.1, 0.1, 0.04, -0.02]]), discovered=torch.tensor([False])
    )
    other = torch.zeros(1, 1, 4, 4)
    other[:, 0, 0, 3] = 1.0  # a different shape, which an observed frame would measure
    s = observe_drawn(cfg, s, other, observed=False)
    drawn = [-0.1 + 0.04, -0.05 - 0.02, 0.0 + 0.04, 0.05 - 0.02, -0.05 + 0.04, -0.02, 0.04, -0.02]
    torch.testing.assert_close(s.drawn[0], torch.tensor(drawn))
    torch.testing.assert_close(s.history[0, -1], torch.tensor([0.0, 0.0, 0.04, -0.02]))
    assert s.moves.tolist() == [1.0]
    slope = torch.tensor([0.0, 0.0, math.atanh(0.04 / 0.2), math.atanh(-0.02 / 0.2)])
    torch.testing.assert_close(s.motion[0], slope)


def test_learned_prior_with_zero_where_loc_stands_still():
    frames, _ = propagate_at_prior_means("learned", 3)
    for slots in frames:
        torch.testing.assert_close(slots.box[0, :2, 2:], START_BOX[:, 2:], atol=1e-6, rtol=0)
        torch.testing.assert_close(slots.logit[0, :2], START_LOGIT, atol=1e-6, rtol=0)
        torch.testing.assert_close(slots.motion[0, :2], torch.zeros(2, 4), atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------------
# 3. model and guide together
def latent_nodes(trace) -> dict:
    return {
        name: site
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not site_is_subsample(site) and not site["is_observed"]
    }


def traced_together(s, video):
    """Guide and replayed model traces of ``video``, checked to align site by site and frame by
    frame; returns ``(guide latents, model latents, model frames)``."""
    n_frames = video.shape[1]
    rec_g, rec_m = [], []
    g_tr = poutine.trace(s.guide).get_trace(video, record=rec_g)
    m_tr = poutine.trace(poutine.replay(s.model, trace=g_tr)).get_trace(video, record=rec_m)
    g_tr.compute_log_prob()
    m_tr.compute_log_prob()
    g_latent, m_latent = latent_nodes(g_tr), latent_nodes(m_tr)
    assert list(m_latent) == list(g_latent) == sites.latent_sites(n_frames)
    for name, m in m_latent.items():
        g = g_latent[name]
        assert g["value"].shape == m["value"].shape, name
        assert g["fn"].batch_shape == m["fn"].batch_shape, name
        assert g["fn"].event_shape == m["fn"].event_shape, name
        assert torch.isfinite(m["log_prob"]).all() and torch.isfinite(g["log_prob"]).all(), name
    for t in range(n_frames):
        assert torch.equal(rec_g[t].presence, rec_m[t].presence), t
        assert torch.equal(rec_g[t].ids, rec_m[t].ids), t
    return g_latent, m_latent, rec_m


@pytest.mark.parametrize("presence", ["relaxed", "hard"])
def test_model_and_guide_trace_together_with_the_velocity_prior(presence):
    s = scalor_for(transition_prior="velocity", presence=presence)
    video = make_video()  # (B=2, T=3, 3, 64, 64)
    n_frames = video.shape[1]
    g_latent, m_latent, rec_m = traced_together(s, video)

    # the tracker's correction is zero at initialisation, so the where prior's mean at frame t is
    # the centre part of the where sample of frame t - 1 in slots that were propagated then, and
    # zero in slots that a discovery filled (at frame 1 every slot was filled at frame 0, or is
    # empty)
    where_loc = m_latent[sites.prop("where", 1)]["fn"].base_dist.loc
    assert (where_loc == 0).all()
    for t in range(2, n_frames):
        loc = m_latent[sites.prop("where", t)]["fn"].base_dist.loc
        prev_where = g_latent[sites.prop("where", t - 1)]["value"].clone()
        prev_where[..., :2] = 0.0  # only the centre's change carries over
        fresh = rec_m[t - 1].discovered.unsqueeze(-1)
        expected = torch.where(fresh, torch.zeros_like(prev_where), prev_where)
        torch.testing.assert_close(loc, expected, rtol=0, atol=0)
        assert (~fresh).any() and (loc != 0).any(), "no propagated slot to check"

    loss = Trace_ELBO().loss(s.model, s.guide, video)
    assert math.isfinite(loss)


def test_model_and_guide_trace_together_with_the_drawn_motion():
    s = scalor_for(transition_prior="constant-velocity", motion_estimate="drawn")
    video = make_video()
    _, m_latent, rec_m = traced_together(s, video)
    # at frame 2 the where prior's centre mean is the drawn move of frame 0 to 1 for objects
    # propagated at frame 1 (a latent: atanh of the move over max_motion), zero for new ones
    loc = m_latent[sites.prop("where", 2)]["fn"].base_dist.loc
    fresh = rec_m[1].discovered
    assert (loc[..., 2:][fresh] == 0).all()
    assert (loc[..., 2:][~fresh] != 0).any(), "no propagated object moved"
    assert loc.abs().max() < math.atanh(0.999) + 1e-3
    assert math.isfinite(Trace_ELBO().loss(s.model, s.guide, video))


def test_the_transition_prior_sets_no_parameter_shape():
    shapes = {
        prior: {k: v.shape for k, v in scalor_for(transition_prior=prior).nets.state_dict().items()}
        for prior in ("learned", "velocity", "constant-velocity", "fixed")
    }
    assert shapes["velocity"] == shapes["learned"] == shapes["fixed"]
    assert shapes["constant-velocity"] == shapes["learned"]


# ------------------------------------------------------------------------------------------
# 4. the merge carries the motion
def test_merge_carries_motion_and_discoveries_start_without_it():
    k, dw, hd = 3, 2, 5
    empty = Slots.empty((1,), k, dw, hd)
    assert empty.motion.shape == (1, k, 4) and not empty.motion.any()
    prop = Slots.empty((1,), k, dw, hd)
    prop.pres = torch.tensor([[0.9, 0.1, 0.8]])  # slot 1 is free
    prop.motion = torch.tensor([[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [-1.0, -2, -3, -4]]])
    prop.ids = torch.tensor([[1, 2, 3]])
    n = 4
    disc = Slots.proposals(
        1,
        pres=torch.tensor([[0.0, 0.95, 0.0, 0.0]]),
        box=torch.full((1, n, 4), 0.2),
        logit=torch.zeros(1, n, 2),
        what=torch.ones(1, n, dw),
        depth=torch.zeros(1, n, 1),
        hidden=hd,
    )
    assert disc.motion.shape == (1, n, 4) and not disc.motion.any()

    out, dropped = merge(prop, disc, k, "tracks")
    assert out.ids.tolist() == [[1, 1 + n + 1, 3]] and dropped.tolist() == [0.0]
    assert out.discovered.tolist() == [[False, True, False]]
    expected = torch.stack([prop.motion[0, 0], torch.zeros(4), prop.motion[0, 2]])[None]
    torch.testing.assert_close(out.motion, expected, rtol=0, atol=0)

    out, _ = merge(prop, disc, k, "topk")  # sorted by presence: the discovery first
    assert out.ids.tolist() == [[1 + n + 1, 1, 3]]
    expected = torch.stack([torch.zeros(4), prop.motion[0, 0], prop.motion[0, 2]])[None]
    torch.testing.assert_close(out.motion, expected, rtol=0, atol=0)
