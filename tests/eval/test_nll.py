"""Importance-sampled NLL: chunked particles on a toy with known evidence, SCALOR, and the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from pyro_scalor.api import Scalor
from pyro_scalor.eval.nll import (
    NLL_KEYS,
    estimate_nll,
    hard_presence_programs,
    importance_log_weights,
    summarise_nll,
)
from pyro_scalor.model.config import get_model_config
from pyro_scalor.train.iwae import bound_per_datum

S, Q = 0.7, 0.8


def toy_model(x):
    with pyro.plate("batch", x.shape[0], dim=-1):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("x", dist.Normal(z, S), obs=x)


def toy_guide(x):
    with pyro.plate("batch", x.shape[0], dim=-1):
        pyro.sample("z", dist.Normal(0.1 + 0.5 * x, Q))


@pytest.mark.parametrize("chunk", [64, 1000])
def test_chunked_bound_reaches_the_exact_evidence(chunk):
    x = torch.linspace(-2.5, 2.5, 200)
    pyro.set_rng_seed(0)
    log_w = importance_log_weights(
        toy_model, toy_guide, x, particles=1000, chunk=chunk, max_plate_nesting=1
    )
    assert log_w.shape == (1000, 200) and log_w.dtype == torch.float64
    exact = dist.Normal(0.0, math.sqrt(1 + S * S)).log_prob(x).double()
    gap = exact - bound_per_datum(log_w)  # >= 0 in expectation, small with K = 1000
    se = float(gap.std() / math.sqrt(gap.numel()))
    assert float(gap.mean()) > -4 * se
    assert float(gap.mean()) < 4 * se + 5e-3
    # the K = 1 bound of the same draws is far looser: the particles really are combined
    assert float((exact - log_w[0]).mean()) > 0.05


def test_summary_statistics_by_hand():
    nll = torch.tensor([10.0, 12.0, 14.0], dtype=torch.float64)
    out = summarise_nll(nll, pixels=4, particles=7)
    assert out["nll_per_sequence"] == pytest.approx(12.0)
    assert out["nll_stderr"] == pytest.approx(2.0 / math.sqrt(3))
    assert out["nll_per_pixel"] == pytest.approx(3.0)
    assert out["nll_per_pixel_stderr"] == pytest.approx(0.5 / math.sqrt(3))
    assert (out["nll_particles"], out["nll_sequences"]) == (7, 3)
    assert math.isnan(summarise_nll(nll[:1], 4, 7)["nll_stderr"])


@pytest.fixture(scope="module")
def scalor_and_video(tmp_path_factory):
    from pyro_scalor.data import load_dataset

    ds = load_dataset("smoke", "test", cache_dir=tmp_path_factory.mktemp("cache"))
    video = torch.stack([ds[i]["video"] for i in range(2)])[:, :2]
    return Scalor(get_model_config("tiny"), seed=0), video


def test_hard_presence_programs_share_the_trained_nets(scalor_and_video):
    scalor, video = scalor_and_video
    model, guide = hard_presence_programs(scalor)
    assert model.cfg.presence == guide.cfg.presence == "hard"
    assert scalor.config.presence == scalor.model.cfg.presence == scalor.nets.cfg.presence
    assert scalor.config.presence == "relaxed"
    for (_, a), (_, b) in zip(model.nets.named_parameters(), scalor.nets.named_parameters()):
        assert a is b
    trace = pyro.poutine.trace(guide).get_trace(video)
    pres = trace.nodes["disc_pres_0"]["value"]
    assert set(pres.unique().tolist()) <= {0.0, 1.0}


def test_chunks_combine_exactly_on_scalor(scalor_and_video):
    """With the guide's posterior modes every particle is the same, whatever the chunking."""
    scalor, video = scalor_and_video
    model, guide = hard_presence_programs(scalor)
    kw = dict(particles=6, deterministic=True, disc_pres_prior=0.01)
    uneven = importance_log_weights(model, guide, video, chunk=4, **kw)
    whole = importance_log_weights(model, guide, video, chunk=6, **kw)
    assert uneven.shape == (6, 2)
    torch.testing.assert_close(uneven, whole)
    torch.testing.assert_close(uneven, uneven[:1].expand(6, 2))


def test_estimate_nll_on_scalor(scalor_and_video):
    scalor, video = scalor_and_video
    out = estimate_nll(scalor, video, particles=6, chunk=4, batch_size=1, seed=3)
    assert set(NLL_KEYS) <= set(out)
    assert out["nll"].shape == (2,) and torch.isfinite(out["nll"]).all()
    pixels = video[0].numel()
    assert out["nll_per_pixel"] == pytest.approx(out["nll_per_sequence"] / pixels)
    assert out["nll_per_sequence"] == pytest.approx(float(out["nll"].mean()))
    assert math.isfinite(out["nll_stderr"]) and out["nll_particles"] == 6
    first, second, other = (
        estimate_nll(scalor, video, particles=6, chunk=4, batch_size=2, seed=seed)
        for seed in (3, 3, 4)
    )
    assert first["nll_per_sequence"] == second["nll_per_sequence"]  # a seed repeats the draws
    assert other["nll_per_sequence"] != first["nll_per_sequence"]
    assert all(p.grad is None for p in scalor.nets.parameters())


def test_nll_on_a_range_of_a_split(tmp_path):
    """``nll_start`` selects the sequences: the same as estimating on that slice directly."""
    from pyro_scalor.data import load_dataset
    from pyro_scalor.eval.nll import estimate_nll_on_split

    scalor = Scalor(get_model_config("tiny"), seed=0)
    cache = tmp_path / "cache"
    video = torch.stack(
        [load_dataset("smoke", "test", cache_dir=cache)[i]["video"] for i in (1, 2)]
    )
    kw = dict(particles=3, chunk=3, seed=5)
    ranged = estimate_nll_on_split(
        scalor, "smoke", nll_sequences=2, nll_start=1, cache_dir=cache, **kw
    )
    direct = estimate_nll(scalor, video, **kw)
    assert ranged["nll_start"] == 1 and ranged["nll_sequences"] == 2
    torch.testing.assert_close(ranged["nll"], direct["nll"])
    with pytest.raises(ValueError, match="nll_start"):
        estimate_nll_on_split(scalor, "smoke", nll_start=10**6, cache_dir=cache, **kw)


def test_evaluate_cli_reports_nll(tmp_path, scalor_and_video):
    from pyro_scalor.cli import main
    from pyro_scalor.train.checkpoint import config_to_dict, rng_state, save_checkpoint
    from pyro_scalor.train.config import get_run_preset

    scalor, _ = scalor_and_video
    ckpt = save_checkpoint(
        tmp_path / "run" / "checkpoint.pt",
        nets=scalor.nets.state_dict(),
        optimizer={},
        step=3,
        rng=rng_state(),
        model_config=config_to_dict(scalor.config),
        train_config=config_to_dict(get_run_preset("smoke").train),
        history=[],
    )
    out = io.StringIO()
    args = ["evaluate", str(ckpt), "--num-sequences", "2", "--device", "cpu", "--no-progress"]
    args += ["--cache-dir", str(tmp_path / "cache"), "--json", str(tmp_path / "m.json")]
    args += ["--nll", "--particles", "3", "--nll-sequences", "1", "--nll-chunk", "2"]
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    for key in ("nll_per_sequence", "nll_per_pixel", "nll_stderr", "nll_particles"):
        assert key in metrics and key in out.getvalue()
    assert metrics["nll_particles"] == 3 and metrics["nll_sequences"] == 1
    assert metrics["nll_stderr"] is None  # one sequence: NaN, written as null
    assert math.isfinite(metrics["nll_per_pixel"]) and metrics["nll_per_pixel"] > 0
    assert metrics["nll_values"] == [metrics["nll_per_sequence"]]
