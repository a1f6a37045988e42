"""CUDA-graph training (``TrainConfig.cuda_graph``): the graph-safe loss and its guards on CPU;
capture, replay, training and resume on a GPU (those tests run only where CUDA is available)."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

from pyro_scalor.api import Scalor
from pyro_scalor.cli import main
from pyro_scalor.data import load_dataset
from pyro_scalor.model import render
from pyro_scalor.model.config import get_model_config
from pyro_scalor.model.render import MaskMemo
from pyro_scalor.train import graphed
from pyro_scalor.train.checkpoint import config_to_dict
from pyro_scalor.train.config import RUN_PRESETS, TrainConfig
from pyro_scalor.train.graphed import GraphedStep, mean_field_loss
from pyro_scalor.train.trainer import Trainer
from pyro_scalor.validation import VideoValidationError, validate_video

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
SMOKE = RUN_PRESETS["smoke"]
KW = {"temperature": 0.7, "disc_pres_prior": 0.01}


def square_video(b: int = 2, t: int = 3, device="cpu") -> torch.Tensor:
    """Grey frames with a bright square moving right."""
    video = torch.full((b, t, 3, 64, 64), 0.15)
    for f in range(t):
        video[:, f, 0, 10:22, 6 + 4 * f : 18 + 4 * f] = 0.9
    return video.to(device)


def graph_loss_and_grads(scalor, video, kw, seed=0):
    """mean_field_loss through TraceMeanField_ELBO._get_trace, with its gradients."""
    pyro.set_rng_seed(seed)
    elbo = TraceMeanField_ELBO(max_plate_nesting=2)
    scalor.nets.zero_grad(set_to_none=True)
    model_trace, guide_trace = elbo._get_trace(scalor.model, scalor.guide, (video,), kw)
    loss = mean_field_loss(model_trace, guide_trace)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in scalor.nets.named_parameters()}


def pyro_loss_and_grads(scalor, video, kw, seed=0):
    pyro.set_rng_seed(seed)
    scalor.nets.zero_grad(set_to_none=True)
    loss = TraceMeanField_ELBO(max_plate_nesting=2).differentiable_loss(
        scalor.model, scalor.guide, video, **kw
    )
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in scalor.nets.named_parameters()}


# ------------------------------------------------------------------------------------------
def test_mean_field_loss_equals_pyros_trace_mean_field_elbo():
    pyro.enable_validation(False)
    scalor = Scalor(get_model_config("tiny"), seed=0)
    video = square_video()
    ours, g_ours = graph_loss_and_grads(scalor, video, KW)
    ref, g_ref = pyro_loss_and_grads(scalor, video, KW)
    assert torch.isfinite(ours) and torch.allclose(ours, ref, rtol=1e-6, atol=1e-3)
    assert g_ours.keys() == g_ref.keys()
    for name in g_ref:
        assert torch.allclose(g_ours[name], g_ref[name], rtol=1e-5, atol=1e-6), name


def test_mean_field_loss_monte_carlo_fallback_matches_pyro():
    """A site without a registered KL (Laplace guide, Normal prior) takes the sampled term."""
    data = torch.tensor([0.3, -1.2, 2.0])

    def model():
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        w = pyro.sample("w", dist.Normal(0.0, 2.0))
        with pyro.plate("data", 3):
            pyro.sample("x", dist.Normal(z + w, 1.0), obs=data)

    loc = torch.tensor(0.5, requires_grad=True)

    def guide():
        pyro.sample("z", dist.Laplace(loc, 0.7))
        pyro.sample("w", dist.Normal(loc * 2, 0.5))

    elbo = TraceMeanField_ELBO()
    for seed in range(3):
        pyro.set_rng_seed(seed)
        ref = elbo.differentiable_loss(model, guide)
        pyro.set_rng_seed(seed)
        ours = mean_field_loss(*elbo._get_trace(model, guide, (), {}))
        assert torch.allclose(ours, ref), seed
        (g_ref,) = torch.autograd.grad(ref, loc)
        (g_ours,) = torch.autograd.grad(ours, loc)
        assert torch.allclose(g_ours, g_ref)


def test_schedule_values_as_device_tensors_give_the_same_loss():
    """The graph feeds temperature and the discovery prior as 0-dim tensors."""
    pyro.enable_validation(False)
    scalor = Scalor(get_model_config("tiny"), seed=0)
    video = square_video()
    as_floats, _ = graph_loss_and_grads(scalor, video, KW)
    tensors = {k: torch.tensor(v) for k, v in KW.items()}
    as_tensors, _ = graph_loss_and_grads(scalor, video, tensors)
    assert torch.allclose(as_floats, as_tensors, rtol=1e-6)


def test_input_checks_and_mask_memo_step_aside_only_while_capturing(monkeypatch):
    bad = torch.full((1, 2, 3, 8, 8), float("nan"))
    with pytest.raises(VideoValidationError, match="NaN"):
        validate_video(bad)
    memo = MaskMemo()
    what, boxes, pres, mask = torch.zeros(2, 3), torch.zeros(2, 4), torch.ones(2), torch.ones(1)
    memo.put(what, boxes, pres, 0, mask)
    assert memo.get(what, boxes, pres, 0) is mask
    monkeypatch.setattr("pyro_scalor.validation.capturing", lambda: True)
    monkeypatch.setattr(render, "capturing", lambda: True)
    assert validate_video(bad) is bad  # shape checks only: value checks would synchronise
    with pytest.raises(VideoValidationError, match="dims"):
        validate_video(bad[0])
    assert memo.get(what, boxes, pres, 0) is None
    memo.put(torch.zeros(1), boxes, pres, 0, mask)
    assert len(memo._entries) == 1


def test_config_and_trainer_refuse_what_a_graph_cannot_do(tmp_path):
    with pytest.raises(ValueError, match="cuda_graph needs the 'elbo' objective"):
        TrainConfig(cuda_graph=True, objective="iwae")
    with pytest.raises(ValueError, match="cuda_graph needs the 'elbo' objective"):
        TrainConfig(cuda_graph=True, particles=2)
    cfg = SMOKE.train.replace(cuda_graph=True)
    scalor = Scalor(SMOKE.model, seed=0)
    with pytest.raises(ValueError, match="needs the model on a CUDA device"):
        Trainer(scalor, cfg, tmp_path, dataset=[None], progress=False, tensorboard=False)


def test_graphed_step_refuses_wrong_objective_optimiser_and_device():
    scalor = Scalor(get_model_config("tiny"), seed=0)
    params = list(scalor.nets.parameters())
    capturable = torch.optim.RMSprop(params, lr=torch.tensor(1e-3), capturable=True)
    args = (scalor.model, scalor.guide)
    with pytest.raises(ValueError, match="'elbo' objective"):
        GraphedStep(Trace_ELBO(), *args, capturable, 1.0)
    with pytest.raises(ValueError, match="'elbo' objective"):
        GraphedStep(TraceMeanField_ELBO(num_particles=2), *args, capturable, 1.0)
    with pytest.raises(ValueError, match="capturable=True"):
        GraphedStep(TraceMeanField_ELBO(), *args, torch.optim.RMSprop(params), 1.0)
    step = GraphedStep(TraceMeanField_ELBO(), *args, capturable, 1.0)
    with pytest.raises(ValueError, match="on a CUDA device"):
        step(square_video(), temperature=1.0, disc_pres_prior=0.1, lr=1e-3)


def test_train_configs_written_before_cuda_graph_load_without_it():
    d = config_to_dict(SMOKE.train)
    assert d.pop("cuda_graph") is False
    assert TrainConfig.from_dict(d) == SMOKE.train
    on = SMOKE.train.replace(cuda_graph=True)
    assert TrainConfig.from_dict(config_to_dict(on)) == on


def test_bench_cuda_graph_flag_is_recorded_and_leaves_cpu_rows_eager(tmp_path):
    out = tmp_path / "bench.json"
    argv = ["-q", "bench", "--model-preset", "tiny", "--max-objects", "2", "--presets"]
    argv += ["--fixed-counts", "2", "--batch-size", "1", "--frames", "2", "--warmup", "1"]
    argv += ["--steps", "1", "--threads", "1", "--device", "cpu", "--cuda-graph"]
    assert main([*argv, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["config"]["setting"]["cuda_graph"] is True
    (row,) = report["results"]
    assert row["cuda_graph"] is False and row["device"] == "cpu"


def test_train_cli_passes_cuda_graph_on_and_explains_the_cpu_refusal(tmp_path, capsys):
    argv = ["train", "--preset", "smoke", "--run-dir", str(tmp_path), "--device", "cpu"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--cuda-graph", "--no-progress"]
    assert main(argv) == 2
    assert "needs the model on a CUDA device" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# on a GPU


def _capturable(scalor, lr):
    return torch.optim.RMSprop(
        scalor.nets.parameters(), lr=torch.tensor(lr, device="cuda"), capturable=True, foreach=True
    )


@cuda
def test_replays_draw_fresh_noise_and_estimate_the_same_elbo_as_eager():
    """With a negligible learning rate the parameters stay put, so every replay is a fresh
    one-sample estimate of the same negative ELBO as the eager objective's."""
    pyro.enable_validation(False)
    scalor = Scalor(get_model_config("tiny"), device="cuda", seed=0)
    video = square_video(device="cuda")
    before = {n: p.detach().clone() for n, p in scalor.nets.named_parameters()}
    elbo = TraceMeanField_ELBO(max_plate_nesting=2)
    opt = _capturable(scalor, 1e-30)
    step = GraphedStep(elbo, scalor.model, scalor.guide, opt, 1.0)
    graph = [float(step(video, lr=1e-30, **KW)[0]) for _ in range(24)]
    assert step.graph is not None and step.calls == 24
    replays = graph[graphed.GRAPH_WARMUP :]
    assert len(set(replays)) == len(replays)  # new noise at every replay
    for n, p in scalor.nets.named_parameters():
        assert torch.allclose(p, before[n]), n
    eager = [
        float(elbo.differentiable_loss(scalor.model, scalor.guide, video, **KW)) for _ in range(40)
    ]
    se = math.sqrt(statistics.variance(replays) / len(replays) + statistics.variance(eager) / 40)
    assert abs(statistics.fmean(replays) - statistics.fmean(eager)) < 5 * se + 1e-3


@cuda
def test_graphed_step_overfits_a_batch_and_rejects_a_new_shape():
    pyro.enable_validation(False)
    scalor = Scalor(get_model_config("tiny"), device="cuda", seed=0)
    video = square_video(device="cuda")
    elbo = TraceMeanField_ELBO(max_plate_nesting=2)
    step = GraphedStep(
        elbo,
        scalor.model,
        scalor.guide,
        _capturable(scalor, 3e-3),
        1.0,
    )
    losses = [float(step(video, lr=3e-3, **KW)[0]) for _ in range(150)]
    assert all(math.isfinite(v) for v in losses)
    assert statistics.fmean(losses[-10:]) < statistics.fmean(losses[:10]) - 0.2 * abs(
        statistics.fmean(losses[:10])
    )
    with pytest.raises(ValueError, match="first one's shape"):
        step(square_video(b=3, device="cuda"), lr=3e-3, **KW)


@cuda
@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_trainer_with_cuda_graph_trains_checkpoints_and_resumes_either_way(tmp_path, optimizer):
    cache = tmp_path / "cache"
    data = load_dataset("smoke", "train", num_sequences=SMOKE.train.num_train, cache_dir=cache)
    cfg = SMOKE.train.replace(
        steps=8, log_every=1, checkpoint_every=4, cuda_graph=True, optimizer=optimizer
    )

    def trainer(c, resume=False):
        scalor = Scalor(c.model_config(SMOKE.model), device="cuda", seed=c.seed)
        return Trainer(
            scalor,
            c,
            tmp_path / "run",
            dataset=data,
            resume=resume,
            progress=False,
            tensorboard=False,
        )

    first = trainer(cfg)
    first.fit()
    assert first.step == 8 and first._graphed is not None and first._graphed.graph is not None
    assert all(math.isfinite(e["train_loss"]) for e in first.history)
    eager = trainer(cfg.replace(steps=10, cuda_graph=False), resume=True)
    assert eager.step == 8
    eager.fit()
    again = trainer(cfg.replace(steps=14), resume=True)
    again.fit()
    assert again.step == 14 and all(math.isfinite(e["train_loss"]) for e in again.history)
    group = again.optimizer.param_groups[0]
    assert group["capturable"] and torch.is_tensor(group["lr"])


def test_gpu_default_preset_is_the_measured_gpu_run_trained_with_a_graph():
    """gpu-default keeps the settings of its measured GPU run: RMSprop at 3e-4, ramps over 4000
    and 3000 steps, std 0.1, no discovery residual; 14,400 steps, CUDA graph; the tracking
    config it was measured with."""
    from pyro_scalor.train.schedules import Schedule

    cpu, gpu = RUN_PRESETS["cpu-default"], RUN_PRESETS["gpu-default"]
    assert (gpu.model.likelihood_std, gpu.model.discovery_residual) == (0.1, False)
    assert (cpu.model.likelihood_std, cpu.model.discovery_residual) == (0.2, True)
    # besides these, only the propagation, merge and duplicate rules it was measured with differ
    kept = ("propagation", "merge", "suppression", "suppression_threshold", "max_objects")
    kept += ("velocity_smoothing", "motion_estimate", "track_admission")
    kept_gpu = {k: getattr(gpu.model, k) for k in kept + ("track_suppression_threshold",)}
    assert kept_gpu["propagation"] == "compound" and not kept_gpu["suppression"]
    assert gpu.model == cpu.model.replace(
        likelihood_std=0.1, discovery_residual=False, transition_prior="learned", **kept_gpu
    )
    assert gpu.train.cuda_graph and not cpu.train.cuda_graph
    assert gpu.train.steps == 14400 and gpu.train.max_seconds is None
    assert gpu.train.log_every >= cpu.train.log_every  # eager logging would cost 30% per step
    assert (gpu.train.optimizer, gpu.train.lr) == ("rmsprop", 3e-4)
    assert (cpu.train.optimizer, cpu.train.lr) == ("adam", 6e-4)
    assert gpu.train.temperature == Schedule(1.0, 0.5, 4000, "linear")
    assert gpu.train.disc_pres_prior == Schedule(0.1, 1e-8, 3000, "exponential")
    # the GPU run was measured with the mode and the duplicate rules at 0.5 / 0.5 and imagines
    # with its trained transition; cpu-default tracks with 0.7 and 0.65 / 0.7, chosen for its
    # own checkpoints, and imagines with 'constant-velocity'
    assert gpu.tracking == dataclasses.replace(
        cpu.tracking,
        discovery_threshold=0.5,
        suppression_threshold=0.5,
        track_suppression_threshold=0.5,
        imagine_transition_prior=None,
        imagine_motion_estimate=None,
    )
    measured = {
        k: getattr(gpu.train, k)
        for k in (
            "steps",
            "max_seconds",
            "cuda_graph",
            "optimizer",
            "lr",
            "temperature",
            "disc_pres_prior",
        )
    }
    assert (gpu.model.max_objects, gpu.train.final_steps) == (12, 0)  # as measured
    keep = {"log_every": cpu.train.log_every, "checkpoint_every": cpu.train.checkpoint_every}
    keep |= {"final_seq_len": cpu.train.final_seq_len, "final_steps": cpu.train.final_steps}
    assert cpu.train.replace(**measured) == gpu.train.replace(**keep)


def test_train_cli_cuda_graph_flags_override_the_preset(tmp_path, monkeypatch):
    """--no-cuda-graph turns gpu-default's graph off, --cuda-graph turns smoke's on, and no flag
    keeps the preset's (the trainer is stopped before it loads any data)."""
    seen = []

    def spy(self, scalor, cfg, *args, **kwargs):
        seen.append(cfg.cuda_graph)
        raise ValueError("stopped by the test")

    monkeypatch.setattr(Trainer, "__init__", spy)
    base = ["-q", "train", "--run-dir", str(tmp_path), "--device", "cpu", "--no-progress"]
    for preset, flags in (
        ("gpu-default", ["--no-cuda-graph"]),
        ("gpu-default", []),
        ("smoke", ["--cuda-graph"]),
        ("smoke", []),
    ):
        assert main([*base, "--preset", preset, *flags]) == 2
    assert seen == [False, True, True, False]
