"""The user-facing Scalor object: deterministic tracking and input validation."""

from __future__ import annotations

import pyro
import pytest
import torch

from pyro_scalor.api import Scalor, TrackingConfig, TrackingResult
from pyro_scalor.model.config import get_model_config
from pyro_scalor.validation import VideoValidationError
from tests.conftest import make_video  # (B, T, 3, 64, 64) by default

B, T = 2, 3


@pytest.fixture(autouse=True)
def _seeded():
    """A fixed seed per test (threads, param store and validation: tests/conftest.py)."""
    pyro.set_rng_seed(0)


@pytest.fixture(scope="module")
def scalor() -> Scalor:
    return Scalor(get_model_config("tiny"), seed=0)


# ------------------------------------------------------------------------------------------
# 11. deterministic tracking
def test_track_shapes_and_value_ranges(scalor):
    k = scalor.config.max_objects
    res = scalor.track(make_video())
    assert isinstance(res, TrackingResult)
    shapes = {
        "boxes": (B, T, k, 4),
        "ids": (B, T, k),
        "presence": (B, T, k),
        "valid": (B, T, k),
        "discovered": (B, T, k),
        "depth": (B, T, k),
        "reconstruction": (B, T, 3, 64, 64),
        "background": (B, T, 3, 64, 64),
        "masks": (B, T, 1, 64, 64),
        "num_propagated": (B, T),
        "num_discovered": (B, T),
        "num_rejected": (B, T),
    }
    for name, shape in shapes.items():
        value = getattr(res, name)
        assert tuple(value.shape) == shape, name
        assert not value.requires_grad, name
    assert res.ids.dtype == torch.long
    assert res.valid.dtype == torch.bool and res.discovered.dtype == torch.bool
    assert torch.equal(res.valid, res.presence > 0.5)
    assert ((res.presence >= 0) & (res.presence <= 1)).all()
    for name in ("reconstruction", "background", "masks"):
        v = getattr(res, name)
        assert v.min() >= 0 and v.max() <= 1, name
    # pixel boxes: ordered corners
    assert (res.boxes[..., 2] >= res.boxes[..., 0]).all()
    assert (res.boxes[..., 3] >= res.boxes[..., 1]).all()
    # nothing is propagated into the first frame
    assert (res.num_propagated[:, 0] == 0).all()
    assert not res.discovered[:, 0][res.ids[:, 0] == 0].any()


def test_track_with_hard_presence():
    hard = Scalor(get_model_config("tiny", presence="hard"), seed=0)
    a, b = hard.track(make_video()), hard.track(make_video())
    assert set(a.presence.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a.ids, b.ids) and torch.equal(a.reconstruction, b.reconstruction)


def test_track_a_single_frame(scalor):
    res = scalor.track(make_video(t=1))
    assert res.boxes.shape == (B, 1, scalor.config.max_objects, 4)
    assert res.reconstruction.shape == (B, 1, 3, 64, 64)
    assert (res.num_propagated == 0).all()


def test_propagated_slots_keep_their_ids(scalor):
    res = scalor.track(make_video())
    k = scalor.config.max_objects
    hw = scalor.config.num_cells
    for b in range(B):
        for t in range(T):
            for j in range(k):
                i = int(res.ids[b, t, j])
                if i == 0:
                    continue
                if bool(res.discovered[b, t, j]):
                    # a discovery of frame t gets an id of that frame's block
                    assert t * hw < i <= (t + 1) * hw
                else:
                    assert t > 0 and i in res.ids[b, t - 1].tolist(), (b, t, j)


def test_track_is_deterministic_and_leaves_the_rng_alone(scalor):
    video = make_video()
    rng = torch.get_rng_state()
    a = scalor.track(video)
    assert torch.equal(torch.get_rng_state(), rng)
    torch.manual_seed(123)  # a different global state must not matter
    b = scalor.track(video)
    for name, value in a.__dict__.items():
        assert torch.equal(value, getattr(b, name)), name


def test_track_in_chunks_matches_one_batch(scalor):
    video = make_video(3)
    whole = scalor.track(video)
    parts = scalor.track(video, chunk=2)
    for name, value in whole.__dict__.items():
        if value.is_floating_point():
            torch.testing.assert_close(getattr(parts, name), value, atol=1e-4, rtol=1e-4)
        else:
            assert torch.equal(getattr(parts, name), value), name
    single = scalor.track(video[1:2])
    assert torch.equal(single.ids[0], whole.ids[1])
    torch.testing.assert_close(single.boxes[0], whole.boxes[1], atol=1e-3, rtol=1e-4)


def test_track_accepts_numpy_and_float64(scalor):
    video = make_video()
    ref = scalor.track(video)
    for other in (video.numpy(), video.double()):
        res = scalor.track(other)
        assert torch.equal(res.ids, ref.ids)
        torch.testing.assert_close(res.reconstruction, ref.reconstruction)


# ------------------------------------------------------------------------------------------
# 12. validation of videos given to model, guide and track
def _nan_video():
    v = make_video()
    v[1, 2, 0, 5, 5] = float("nan")
    return v


def _inf_video():
    v = make_video()
    v[0, 0, 1, 0, 0] = float("inf")
    return v


BAD_VIDEOS = {
    "no-batch-dim": (lambda: make_video()[0], r"4 dims.*add a batch dim"),
    "nan": (_nan_video, r"1 NaN"),
    "inf": (_inf_video, r"infinite"),
    "above-one": (lambda: make_video() * 2, r"values in \[0, 1\]"),
    "negative": (lambda: make_video() - 0.5, r"values in \[0, 1\]"),
    "wrong-size": (lambda: torch.rand(B, T, 3, 32, 32), r"32x32.*expects 64x64"),
    "wrong-channels": (lambda: torch.rand(B, T, 1, 64, 64), r"1 channels.*\(3,\)"),
    "uint8": (lambda: (make_video() * 255).to(torch.uint8), r"uint8.*255"),
    "integer": (lambda: torch.ones(B, T, 3, 64, 64, dtype=torch.int64), r"dtype torch.int64"),
    "list": (lambda: make_video().tolist(), r"torch.Tensor or numpy array.*got list"),
    "empty": (lambda: torch.rand(0, T, 3, 64, 64), r"empty"),
}

CALLS = {
    "model": lambda s, v: s.model(v),
    "guide": lambda s, v: s.guide(v),
    "track": lambda s, v: s.track(v),
}


@pytest.mark.parametrize("bad", list(BAD_VIDEOS))
@pytest.mark.parametrize("call", list(CALLS))
def test_bad_videos_raise_video_validation_error(scalor, bad, call):
    make, pattern = BAD_VIDEOS[bad]
    with pytest.raises(VideoValidationError, match=pattern) as info:
        CALLS[call](scalor, make())
    assert isinstance(info.value, ValueError)  # callers catching ValueError still work
    assert str(info.value).startswith("video ")  # names the argument
    if bad in ("no-batch-dim", "nan", "inf", "integer", "list"):
        assert "(batch, time, channels, height, width)" in str(info.value)


# ------------------------------------------------------------------------------------------
# duplicate suppression at inference
def test_inference_programs_add_suppression_and_share_the_weights():
    trained_without = Scalor(get_model_config("tiny", suppression=False), seed=0)
    model, guide = trained_without.inference_programs()
    assert guide.cfg.suppression and model.cfg.suppression
    assert not trained_without.guide.cfg.suppression  # training programs unchanged
    assert guide.nets.glimpse_decoder is trained_without.nets.glimpse_decoder
    off = Scalor(get_model_config("tiny"), seed=0, tracking=TrackingConfig(suppression=False))
    assert off.inference_programs() == (off.model, off.guide)
    # a per-call tracking config wins over the object's, and its thresholds replace the model's
    m, g = off.inference_programs(TrackingConfig(suppression_threshold=0.7))
    assert g.cfg.suppression and g.cfg.suppression_threshold == 0.7 == m.cfg.suppression_threshold
    assert off.inference_programs(TrackingConfig(suppression_threshold=0.7))[1] is g  # cached


def test_tracking_config_changes_and_validation():
    trained_with = get_model_config("tiny", suppression=True, suppression_threshold=0.4)
    # tracking without the switch keeps a model trained with suppression as it is
    assert TrackingConfig(suppression=False).model_changes(trained_with) == {}
    assert TrackingConfig().model_changes(trained_with) == {}
    assert TrackingConfig(track_suppression_threshold=0.5).model_changes(trained_with) == {
        "track_suppression_threshold": 0.5
    }
    with pytest.raises(ValueError, match="suppression_threshold must be in"):
        TrackingConfig(suppression_threshold=0.0)
    with pytest.raises(ValueError, match="track_suppression_threshold must be in"):
        TrackingConfig(track_suppression_threshold=1.5)
    with pytest.raises(ValueError, match="discovery_threshold must be in"):
        TrackingConfig(discovery_threshold=1.0)
    # the discovery threshold acts on the guide's modes, not on the programs' config
    assert TrackingConfig(discovery_threshold=0.7).model_changes(trained_with) == {}
    # the imagined frames' transition changes generating only
    imagine = TrackingConfig(
        imagine_transition_prior="constant-velocity", imagine_motion_estimate="drawn"
    )
    assert imagine.model_changes(trained_with) == {}
    assert imagine.model_changes(trained_with, imagine=True) == {
        "transition_prior": "constant-velocity",
        "motion_estimate": "drawn",
    }
    with pytest.raises(ValueError, match="imagine_transition_prior must be one of"):
        TrackingConfig(imagine_transition_prior="linear")
    with pytest.raises(ValueError, match="imagine_motion_estimate must be one of"):
        TrackingConfig(imagine_motion_estimate="kalman")


def test_generation_imagines_with_the_tracking_configs_transition():
    tracking = TrackingConfig(
        imagine_transition_prior="constant-velocity", imagine_motion_estimate="drawn"
    )
    s = Scalor(get_model_config("tiny", transition_prior="velocity"), seed=0, tracking=tracking)
    model, guide = s.inference_programs(imagine=True)
    assert (model.cfg.transition_prior, model.cfg.motion_estimate) == ("constant-velocity", "drawn")
    assert guide.nets.glimpse_decoder is s.nets.glimpse_decoder  # the same weights
    tracked = s.inference_programs()[0].cfg
    assert (tracked.transition_prior, tracked.motion_estimate) == ("velocity", "exponential")
    video = torch.rand(2, 3, 3, 64, 64)
    out = s.generate(video, 2, noise_scale=0.0, seed=0)
    assert out.boxes.shape[:2] == (2, 5)


def test_discovery_threshold_keeps_only_confident_discoveries():
    cfg = get_model_config("tiny", suppression=False, rejection=False, max_objects=64)
    scalor = Scalor(cfg, seed=0, tracking=TrackingConfig(suppression=False))
    with torch.no_grad():  # every cell's discovery present with probability sigmoid(0.5) = 0.62
        scalor.nets.discovery_head.net[-1].bias[0] = 0.5
    video = make_video()
    loose = scalor.track(video)
    strict = scalor.track(
        video, tracking=TrackingConfig(suppression=False, discovery_threshold=0.7)
    )
    cells = cfg.num_cells
    # at 0.5 the discoveries of frame 0 are all (or nearly all) objects; at 0.7 only those whose
    # head output rose above logit(0.7) = 0.85, so strictly fewer
    assert loose.num_discovered[:, 0].min() > cells // 2
    assert (strict.num_discovered[:, 0] < loose.num_discovered[:, 0]).all()
    # the same threshold through generate's inference of the observed frames
    gen = scalor.generate(
        video,
        1,
        noise_scale=0.0,
        seed=0,
        tracking=TrackingConfig(suppression=False, discovery_threshold=0.99),
    )
    assert gen.presence[:, 0].sum() < loose.presence[:, 0].sum()


def test_track_suppresses_duplicate_discoveries():
    cfg = get_model_config("tiny", suppression=False, rejection=False)
    plain = Scalor(cfg, seed=0, tracking=TrackingConfig(suppression=False))
    suppressed = Scalor(cfg, seed=0)
    # an untrained discovery head proposes overlapping boxes in neighbouring cells
    with torch.no_grad():
        head = plain.nets.discovery_head.net[-1]
        head.bias[0] = 5.0  # every cell's proposal present
    suppressed.nets.load_state_dict(plain.nets.state_dict())
    video = make_video()
    a, b = plain.track(video), suppressed.track(video)
    # with 4 slots both fill them, but fewer proposals survive and some are counted as dropped
    assert b.num_discovered.sum() < a.num_discovered.sum()
    assert (b.num_rejected > 0).any() and (a.num_rejected == 0).all()
    # the same through a per-call tracking config
    c = plain.track(video, tracking=TrackingConfig())
    torch.testing.assert_close(c.num_discovered, b.num_discovered)


def test_generation_noise_scale_zero_makes_gaussian_latents_deterministic(scalor):
    video = make_video()
    a = scalor.generate(video, 2, noise_scale=0.0, seed=0)
    b = scalor.generate(video, 2, noise_scale=0.0, seed=1)
    # the background depends on Gaussian latents only: equal across seeds without noise
    assert torch.isfinite(a.frames).all()
    torch.testing.assert_close(a.background, b.background, atol=1e-6, rtol=0)
    c = scalor.generate(video, 2, noise_scale=1.0, seed=1)
    assert (a.background[:, T:] - c.background[:, T:]).abs().max() > 1e-3
    p0 = scalor.sample_prior(2, 3, noise_scale=0.0, seed=0)
    p1 = scalor.sample_prior(2, 3, noise_scale=0.0, seed=1)
    torch.testing.assert_close(p0.background, p1.background, atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------------
# small input errors: one-line ValueErrors, not ZeroDivisionError or IndexError
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda s: s.sample_prior(0, 3), "num_sequences and num_frames must be >= 1"),
        (lambda s: s.sample_prior(2, 0), "num_sequences and num_frames must be >= 1"),
        (lambda s: s.model(batch_size=0, num_frames=2), "batch_size and num_frames must be >= 1"),
        (lambda s: s.model(batch_size=2, num_frames=0), "batch_size and num_frames must be >= 1"),
        (lambda s: s.track(make_video(), chunk=0), "chunk must be >= 1"),
    ],
)
def test_empty_sizes_raise_one_line_value_errors(scalor, call, match):
    with pytest.raises(ValueError, match=match) as info:
        call(scalor)
    assert "\n" not in str(info.value)
