"""``pyro-scalor generate`` (prior and conditional) and the generation numbers and pictures."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from pyro_scalor.api import GenerationResult, Scalor
from pyro_scalor.cli import main
from pyro_scalor.cli.common import load_scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.eval.baselines import last_observed_slots, render_slots
from pyro_scalor.eval.horizon import (
    HorizonScore,
    default_split,
    format_horizon_table,
    horizon_errors,
    resolve_horizon,
    run_conditional,
)
from pyro_scalor.viz import color_for_id
from pyro_scalor.viz.generation import (
    segmentation_frames,
    trajectory_frames,
    write_generation_pictures,
)
from tests.conftest import make_generation

PNG, GIF = b"\x89PNG\r\n\x1a\n", (b"GIF89a", b"GIF87a")
# one thread and a clean param store per test, and the fixtures cache and checkpoint (a
# smoke-trained run directory): tests/conftest.py


@pytest.fixture(scope="module")
def test_split(cache):
    return load_dataset("smoke", "test", cache_dir=cache)


def generate(checkpoint, *extra) -> list[str]:
    return ["generate", str(checkpoint), "--device", "cpu", *extra]


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------
def test_generate_prior_writes_pictures_and_json(checkpoint, cache, tmp_path, capsys):
    out, js = tmp_path / "out", tmp_path / "prior.json"
    args = ["--prior", "--frames", "3", "--num-sequences", "2", "--pictures", "1"]
    args += ["--cache-dir", str(cache), "--data-sequences", "5"]
    assert main(generate(checkpoint, *args, "--out", str(out), "--json", str(js))) == 0
    printed = capsys.readouterr().out
    assert "prior samples: 2 x 3 frames" in printed
    assert "against the ground truth of 5 smoke train sequences" in printed
    data = json.loads(js.read_text())
    assert data["mode"] == "prior" and data["frames"] == 3 and data["num_sequences"] == 2
    assert len(data["objects_per_frame"]) == 3 and data["checkpoint_step"] == 3
    assert data["statistics_data"] == {"preset": "smoke", "split": "train", "num_sequences": 5}
    for name in ("objects_per_frame", "speed_px", "size_px"):
        stat = data["statistics"][name]
        assert name in printed and stat["data_mean"] > 0 and stat["data_count"] > 0
        assert 0 <= stat["total_variation"] <= 1 or stat["samples_count"] == 0
    assert (out / "prior_0.png").read_bytes()[:8] == PNG
    assert (out / "prior_0_trajectories.png").read_bytes()[:8] == PNG
    assert (out / "prior_0.gif").read_bytes()[:6] in GIF
    assert not (out / "prior_1.png").exists()  # --pictures 1


def test_generate_prior_with_the_fitted_discovery_prior(checkpoint, cache, tmp_path, capsys):
    js = tmp_path / "prior.json"
    args = ["--prior", "--fit-discovery", "--frames", "3", "--num-sequences", "2"]
    args += ["--pictures", "0", "--cache-dir", str(cache), "--data-sequences", "4"]
    assert main(generate(checkpoint, *args, "--json", str(js))) == 0
    assert "discovery prior fitted on 4 smoke training sequences" in capsys.readouterr().out
    data = json.loads(js.read_text())
    rates = data["fitted_discovery"]
    assert 0 < rates["first"] < 1 and 0 < rates["later"] < 1
    assert data["disc_pres_prior"] == [rates["first"], rates["later"]]


def test_generate_takes_a_discovery_prior_per_frame(checkpoint, cache, tmp_path):
    js = tmp_path / "prior.json"
    args = ["--prior", "--frames", "3", "--num-sequences", "2", "--pictures", "0"]
    args += ["--cache-dir", str(cache), "--data-sequences", "2", "--disc-pres-prior", "0.2", "0.01"]
    assert main(generate(checkpoint, *args, "--json", str(js))) == 0
    assert json.loads(js.read_text())["disc_pres_prior"] == [0.2, 0.01]


def test_generate_conditional_scores_only_frames_with_ground_truth(
    checkpoint, cache, tmp_path, capsys, caplog
):
    out, js = tmp_path / "out", tmp_path / "cond.json"
    args = ["--observe", "2", "--horizon", "3", "--preset", "smoke", "--num-sequences", "3"]
    extra = ["--pictures", "1", "--cache-dir", str(cache), "--out", str(out), "--json", str(js)]
    with caplog.at_level(logging.WARNING, logger="pyro_scalor.eval.horizon"):
        assert main(generate(checkpoint, *args, *extra)) == 0
    assert "only the first 2 imagined frames are compared" in caplog.text
    printed = capsys.readouterr().out
    assert "observe 2, imagine 3" in printed and "centre px" in printed
    data = json.loads(js.read_text())
    # smoke sequences have 4 frames: 2 observed, 3 imagined, 2 of them comparable
    assert data["mode"] == "conditional" and data["preset"] == "smoke"
    assert (data["observe"], data["horizon"], data["compared_steps"]) == (2, 3, 2)
    assert data["step"] == [1, 2] and data["frame"] == [2, 3]
    assert data["num_sequences"] == 3 and data["split"] == "test"
    for key in (
        "center_error_px",
        "center_count",
        "tracks_lost",
        "tracks_lost_share",
        "cv_center_error_px",
        "pixel_mse",
        "cv_pixel_mse",
    ):
        assert len(data[key]) == 2, key
    assert all(v >= 0 for v in data["pixel_mse"] + data["copy_last_pixel_mse"])
    assert all(v >= 0 for v in data["cv_pixel_mse"])
    assert "const-v px" in printed and "c-v MSE" in printed
    assert data["matched_objects"] <= data["gt_objects_last_observed"]
    assert (out / "conditional_0.png").read_bytes()[:8] == PNG
    gif = Image.open(out / "conditional_0.gif")
    assert gif.n_frames == 5  # the whole generated sequence
    assert gif.size[0] == 4 * gif.size[1]  # real | generated | segmentation | trajectories


def test_generate_imagines_with_the_transition_asked_for(checkpoint, cache, tmp_path):
    js = tmp_path / "g.json"
    args = ["--observe", "2", "--horizon", "2", "--preset", "smoke", "--num-sequences", "2"]
    extra = ["--cache-dir", str(cache), "--out", str(tmp_path), "--json", str(js)]
    assert main(generate(checkpoint, *args, *extra)) == 0
    trained = json.loads(js.read_text())["imagined_with"]
    switch = ["--transition", "constant-velocity", "--motion-estimate", "drawn"]
    assert main(generate(checkpoint, *args, *extra, *switch)) == 0
    assert json.loads(js.read_text())["imagined_with"] == {
        "transition_prior": "constant-velocity",
        "motion_estimate": "drawn",
    }
    assert trained != {"transition_prior": "constant-velocity", "motion_estimate": "drawn"}


def test_generate_defaults_to_training_data_and_its_length(checkpoint, cache, tmp_path):
    js = tmp_path / "d.json"
    extra = ["--num-sequences", "100", "--pictures", "0", "--cache-dir", str(cache)]
    assert main(generate(checkpoint, *extra, "--out", str(tmp_path), "--json", str(js))) == 0
    data = json.loads(js.read_text())
    assert data["preset"] == "smoke" and (data["observe"], data["horizon"]) == (2, 2)
    assert data["num_sequences"] == 8  # the whole smoke test split, not 100
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--observe", "0"], "--observe must be >= 1"),
        (["--horizon", "0"], "--horizon must be >= 1"),
        (["--prior", "--observe", "2"], "--observe only apply to conditional"),
        (["--frames", "3"], "--frames is for --prior"),
        (["--observe", "4", "--preset", "smoke"], "leaves no frame"),
    ],
)
def test_generate_rejects_bad_arguments(checkpoint, cache, tmp_path, capsys, extra, message):
    args = generate(checkpoint, *extra, "--cache-dir", str(cache), "--out", str(tmp_path))
    assert main([*args, "--num-sequences", "1"]) == 2
    err = capsys.readouterr().err
    assert "pyro-scalor generate: error:" in err and message in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--pictures", "-1"], "argument --pictures: expected a non-negative integer, got -1"),
        (["--disc-pres-prior", "2"], "expected a probability in [0, 1], got 2.0"),
        (["--disc-pres-prior", "x"], "expected a probability in [0, 1], got 'x'"),
        (["--noise-scale", "-1"], "expected a number >= 0, got -1.0"),
    ],
)
def test_generate_rejects_bad_values_in_one_line(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as info:
        main(generate(tmp_path / "no-checkpoint", *extra))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------
# numbers
# ------------------------------------------------------------------------------------------
def test_default_split_and_resolve_horizon():
    assert default_split(16) == (5, 5)
    assert default_split(10) == (5, 5)
    assert default_split(8) == (4, 4)
    assert default_split(4) == (2, 2)
    assert resolve_horizon(None, None, 8) == (4, 4)
    assert resolve_horizon(3, None, 8) == (3, 5)
    assert resolve_horizon(None, 2, 8) == (6, 2)
    assert resolve_horizon(5, 5, 16) == (5, 5)
    with pytest.raises(ValueError, match="observe must be >= 1"):
        resolve_horizon(0, 2, 8)
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        resolve_horizon(2, 0, 8)
    with pytest.raises(ValueError, match="dsprites-ld-long"):
        resolve_horizon(8, 2, 8)


def _truth_as_generation(items, observe, horizon, shift=0.0) -> GenerationResult:
    """A GenerationResult that reproduces the ground truth (boxes shifted by ``shift`` px in
    x in the imagined frames)."""
    video = torch.stack([it["video"] for it in items])[:, : observe + horizon]
    boxes = torch.stack([it["boxes"] for it in items])[:, : observe + horizon].clone()
    boxes[:, observe:, :, 0::2] += shift
    visible = torch.stack([it["visible"] for it in items])[:, : observe + horizon]
    ids = torch.stack([it["ids"] for it in items])[:, None].expand(visible.shape)
    return make_generation(video, boxes, ids, visible, observe)


@pytest.mark.parametrize("shift", [0.0, 3.0])
def test_horizon_errors_of_a_perfect_generation(test_split, monkeypatch, shift):
    scalor = Scalor("tiny", seed=0)
    calls = []

    def fake_generate(video, horizon, **kwargs):
        lo = sum(len(c) for c in calls)
        items = [test_split[i] for i in range(lo, lo + video.shape[0])]
        calls.append(items)
        assert torch.equal(video, torch.stack([it["video"] for it in items])[:, :2])
        return _truth_as_generation(items, video.shape[1], horizon, shift)

    monkeypatch.setattr(scalor, "generate", fake_generate)
    errors = horizon_errors(scalor, test_split, 2, 2, num_sequences=5, seed=0, batch_size=2)
    assert [len(c) for c in calls] == [2, 2, 1]
    visible_last = sum(int(test_split[i]["visible"][1].sum()) for i in range(5))
    assert errors["matched_objects"] == errors["gt_objects_last_observed"] == visible_last
    vis = [test_split[i]["visible"] for i in range(5)]
    expected = [sum(int((v[1] & v[t]).sum()) for v in vis) for t in (2, 3)]
    assert errors["center_count"] == expected and min(expected) > 0
    assert errors["tracks_lost"] == [0, 0]
    assert errors["center_error_px"] == pytest.approx([shift, shift], abs=1e-9)
    assert errors["pixel_mse"] == [0.0, 0.0]
    assert all(v > 0 for v in errors["static_center_error_px"])  # the objects do move
    assert all(v > 0 for v in errors["copy_last_pixel_mse"])
    assert errors["preset"] == "smoke" and errors["num_sequences"] == 5
    assert errors["tracks_lost_share"] == [0.0, 0.0]
    assert all(v >= 0 for v in errors["cv_center_error_px"] + errors["cv_pixel_mse"])
    assert "centre px" in format_horizon_table(errors)


def test_horizon_score_counts_lost_tracks_and_checks_lengths(test_split):
    items = [test_split[0]]
    gen = _truth_as_generation(items, 2, 2)
    gen.valid = gen.valid.clone()
    gen.valid[:, 3] = False  # every track vanishes at the last imagined frame
    score = HorizonScore(observe=2, compared=2)
    gt_boxes = torch.stack([it["boxes"] for it in items])
    gt_vis = torch.stack([it["visible"] for it in items])
    real = torch.stack([it["video"] for it in items])
    score.add(gen, gt_boxes, gt_vis, real)
    s = score.summary()
    both = int((gt_vis[0, 1] & gt_vis[0, 3]).sum())
    assert s["tracks_lost"] == [0, both] and s["center_count"][1] == 0
    assert np.isnan(s["center_error_px"][1])
    with pytest.raises(ValueError, match="need 5 frames"):
        HorizonScore(observe=2, compared=3).add(gen, gt_boxes, gt_vis, real)


def test_constant_velocity_render_at_rest_is_the_last_reconstruction(checkpoint, test_split):
    scalor = load_scalor(checkpoint, "cpu")
    scalor.nets.eval()
    video = torch.stack([test_split[i]["video"] for i in range(3)])
    kw = dict(temperature=0.1, disc_pres_prior=0.1)
    result = scalor.generate(video[:, :2], 2, noise_scale=0.0, **kw)
    slots = last_observed_slots(scalor, video[:, :2], **kw)
    assert torch.equal(slots["ids"], result.ids[:, 1])
    k = scalor.config.max_objects
    still = render_slots(scalor, slots, torch.zeros(3, 2, k, 2), result.background[:, 1:3])
    assert still.shape == (3, 2, 3, 64, 64)
    torch.testing.assert_close(still[:, 0], result.frames[:, 1], atol=1e-6, rtol=0)
    moved = render_slots(scalor, slots, torch.full((3, 1, k, 2), 4.0), result.background[:, 1:2])
    assert not torch.allclose(moved[:, 0], still[:, 0])


@pytest.mark.parametrize("observe, horizon", [(5, 10), (8, 8)])
def test_longer_horizons_on_16_frames(checkpoint, cache, observe, horizon):
    scalor = load_scalor(checkpoint, "cpu")
    scalor.nets.eval()
    long = load_dataset("smoke", "test", cache_dir=cache, num_sequences=2, seq_len=16)
    errors, example = run_conditional(scalor, long, observe, horizon, 2, batch_size=2)
    assert (errors["observe"], errors["compared_steps"], errors["sequence_length"]) == (
        observe,
        horizon,
        16,
    )
    assert example["result"].frames.shape[1] == observe + horizon
    assert errors["frame"] == list(range(observe, observe + horizon))
    for key in ("center_error_px", "cv_center_error_px", "tracks_lost_share", "cv_pixel_mse"):
        assert len(errors[key]) == horizon, key
    for i, lost in enumerate(errors["tracks_lost"]):
        alive = lost + errors["center_count"][i]
        share = errors["tracks_lost_share"][i]
        assert share == pytest.approx(lost / alive) if alive else np.isnan(share)
    assert all(v >= 0 for v in errors["cv_pixel_mse"])


# ------------------------------------------------------------------------------------------
# pictures
# ------------------------------------------------------------------------------------------
def test_segmentation_takes_the_frontmost_box_and_the_mask():
    masks = torch.zeros(1, 1, 8, 8)
    masks[0, 0, 2:6, 2:6] = 1.0
    masks[0, 0, 3, 3] = 0.5
    boxes = torch.tensor([[[0.0, 0.0, 5.0, 5.0], [3.0, 3.0, 8.0, 8.0], [0.0, 0.0, 8.0, 8.0]]])
    ids = torch.tensor([[1, 2, 3]])
    valid = torch.tensor([[True, True, False]])
    depth = torch.tensor([[0.5, -1.0, -5.0]])  # id 2 in front of id 1; id 3 absent
    seg = segmentation_frames(masks, boxes, ids, valid, depth)
    assert seg.shape == (1, 8, 8, 3)
    np.testing.assert_allclose(seg[0, 2, 2], color_for_id(1), atol=1e-6)
    np.testing.assert_allclose(seg[0, 4, 4], color_for_id(2), atol=1e-6)  # overlap: front
    np.testing.assert_allclose(seg[0, 3, 3], 0.5 * np.array(color_for_id(2)), atol=1e-6)
    assert seg[0, 0, 0].sum() == 0 and seg[0, 7, 7].sum() == 0  # no mask there


def test_trajectory_frames_draw_paths_and_dots():
    boxes = torch.tensor([[[0.0, 0.0, 4.0, 4.0]], [[8.0, 0.0, 12.0, 4.0]]])
    traj = trajectory_frames(boxes, torch.tensor([[5], [5]]), torch.ones(2, 1, dtype=bool), 16, 16)
    color = np.array(color_for_id(5))
    assert traj.shape == (2, 16, 16, 3)
    np.testing.assert_allclose(traj[0, 2, 2], color)  # dot at the centre (2, 2)
    np.testing.assert_allclose(traj[1, 2, 10], color)  # dot at (10, 2)
    np.testing.assert_allclose(traj[1, 2, 6], color)  # the path between them
    assert traj[0, 2, 10].sum() == 0  # frame 0 does not know the future


def test_write_generation_pictures_with_real_frames(test_split, tmp_path):
    items = [test_split[0], test_split[1]]
    gen = _truth_as_generation(items, 2, 2)
    real = torch.stack([it["video"] for it in items])[:, :3]  # shorter than the generation
    paths = write_generation_pictures(gen, tmp_path, real=real, max_sequences=1, prefix="x")
    assert [p.name for p in paths] == ["x_0.png", "x_0_trajectories.png", "x_0.gif"]
    gif = Image.open(tmp_path / "x_0.gif")
    assert gif.n_frames == 4 and gif.size == (4 * 128, 128)
    gif.seek(3)  # imagined: red border
    frame = np.asarray(gif.convert("RGB"))
    assert frame[0, 200, 0] > 150 and frame[0, 200, 1] < 80
