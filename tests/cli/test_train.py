"""``pyro-scalor train`` and ``pyro-scalor evaluate`` end to end on the smoke preset."""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil

import pyro
import pytest
import torch

from pyro_scalor.cli import main
from pyro_scalor.train import trainer as trainer_mod
from pyro_scalor.train.checkpoint import load_checkpoint

METRICS = ("mota", "motp", "idf1", "precision", "recall", "count_mae", "propagated_fraction")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def train_args(run_dir, cache, *extra) -> list[str]:
    return [
        "train",
        "--preset",
        "smoke",
        "--run-dir",
        str(run_dir),
        "--cache-dir",
        str(cache),
        "--no-progress",
        "--device",
        "cpu",
        *extra,
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache):
    """One smoke training run through the CLI: (run_dir, exit code, stdout)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    pyro.clear_param_store()
    run_dir = tmp_path_factory.mktemp("run")
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = main(train_args(run_dir, cache))
    finally:
        torch.set_num_threads(threads)
    return run_dir, code, out.getvalue()


# ------------------------------------------------------------------------------------------
def test_train_smoke_writes_checkpoint_and_tensorboard(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, code, out = trained
    assert code == 0
    assert "trained 3 steps" in out
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    assert ckpt["step"] == 3
    assert [e["step"] for e in ckpt["history"]] == [1, 2, 3]
    assert all(math.isfinite(e["train_loss"]) for e in ckpt["history"])
    events = list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert events and all(p.stat().st_size > 0 for p in events)
    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss/train")] == [1, 2, 3]
    assert "terms/nll" in acc.Tags()["scalars"]
    assert "tracking" in acc.Tags()["images"]


def test_evaluate_writes_metrics_and_pictures(trained, cache, tmp_path):
    run_dir, code, _ = trained
    assert code == 0
    json_path, pictures = tmp_path / "metrics.json", tmp_path / "pics"
    args = [
        "evaluate",
        str(run_dir / "checkpoint.pt"),
        "--data",
        "smoke",
        "--split",
        "test",
        "--json",
        str(json_path),
        "--pictures",
        str(pictures),
        "--cache-dir",
        str(cache),
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    metrics = json.loads(json_path.read_text())
    assert set(METRICS) <= set(metrics)
    assert metrics["checkpoint_step"] == 3
    assert metrics["num_sequences"] == 8 and metrics["split"] == "test"
    for key in ("precision", "recall", "idf1"):
        assert metrics[key] is None or 0.0 <= metrics[key] <= 1.0, key
    assert metrics["mota"] is None or metrics["mota"] <= 1.0
    assert metrics["count_mae"] >= 0
    found = metrics["found_by_frame"]  # delayed discovery: cumulative, so never falls
    assert len(found) == 3 and all(a <= b for a, b in zip(found, found[1:], strict=False))
    assert metrics["box_iou"] == pytest.approx(1 - metrics["motp"])
    pngs, gifs = sorted(pictures.glob("*.png")), sorted(pictures.glob("*.gif"))
    assert pngs and gifs
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert all(p.read_bytes()[:6] in (b"GIF89a", b"GIF87a") for p in gifs)


def test_train_resume_continues_and_refuses_other_configs(trained, cache, tmp_path, capsys):
    run_dir, code, _ = trained
    assert code == 0
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    capsys.readouterr()
    assert main(train_args(copy, cache, "--resume", "--lr", "0.01")) == 2
    err = capsys.readouterr().err
    assert "trained with other settings: lr" in err and "--run-dir" in err
    assert load_checkpoint(copy / "checkpoint.pt")["step"] == 3  # untouched
    assert main(train_args(copy, cache, "--resume", "--steps", "4")) == 0
    ckpt = load_checkpoint(copy / "checkpoint.pt")
    assert ckpt["step"] == 4 and [e["step"] for e in ckpt["history"]] == [1, 2, 3, 4]
    # the first three steps' history is the original run's
    original = load_checkpoint(run_dir / "checkpoint.pt")["history"]
    assert ckpt["history"][:3] == original


def test_train_cli_sets_training_windows_and_the_optimizer(cache, tmp_path, capsys):
    extra = ("--steps", "1", "--seq-len", "2", "--seq-window", "random", "--optimizer", "adam")
    assert main(train_args(tmp_path / "run", cache, *extra)) == 0
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    cfg = ckpt["train_config"]
    assert (cfg.seq_len, cfg.seq_window, cfg.optimizer) == (2, "random", "adam")
    assert "exp_avg" in ckpt["optimizer"]["state"][0]  # Adam's state, not RMSprop's
    for bad in (("--seq-window", "middle"), ("--optimizer", "sgd")):
        with pytest.raises(SystemExit):
            main(train_args(tmp_path / "bad", cache, *bad))
        assert "invalid choice" in capsys.readouterr().err


def test_evaluate_cli_ignores_small_true_boxes(trained, cache, tmp_path, capsys):
    run_dir, code, _ = trained
    assert code == 0
    common = [str(run_dir), "--preset", "smoke", "--cache-dir", str(cache), "--no-progress"]
    scores = {}
    for area in ("0", "1e9"):
        path = tmp_path / f"m{area}.json"
        assert main(["evaluate", *common, "--ignore-edge-area", area, "--json", str(path)]) == 0
        scores[area] = json.loads(path.read_text())
    assert "true boxes at the edge under 1e+09 px^2 ignored" in capsys.readouterr().out
    strict, none_left = scores["0"], scores["1e9"]
    assert strict["ignore_edge_area"] == 0.0 and "num_ignored_gt" not in strict
    # every true box at the edge is under 1e9 px^2: those are ignored, with their predictions
    assert none_left["ignore_edge_area"] == 1e9
    ignored, kept = none_left["num_ignored_gt"], none_left["num_gt"]
    assert ignored > 0 and ignored + kept == strict["num_gt"]
    assert none_left["num_pred"] + none_left["num_ignored_pred"] == strict["num_pred"]
    with pytest.raises(SystemExit):
        main(["evaluate", *common, "--ignore-edge-area", "-1"])
    assert "expected a number >= 0, got -1.0" in capsys.readouterr().err


def test_evaluate_cli_refuses_a_negative_nll_start(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "runs/none", "--nll", "--nll-start", "-1"])
    assert "non-negative" in capsys.readouterr().err


def test_train_cli_returns_3_on_a_non_finite_loss(cache, tmp_path, monkeypatch, capsys):
    real = trainer_mod.make_objective

    def make_objective(*args, **kwargs):
        objective = real(*args, **kwargs)
        original = objective.loss_and_grads
        calls = [0]

        def loss_and_grads(*a, **kw):
            loss = original(*a, **kw)
            calls[0] += 1
            return float("nan") if calls[0] > 2 else loss

        objective.loss_and_grads = loss_and_grads
        return objective

    monkeypatch.setattr(trainer_mod, "make_objective", make_objective)
    assert main(train_args(tmp_path, cache)) == 3
    out = capsys.readouterr().out
    assert "non-finite loss" in out and str(tmp_path / "checkpoint.pt") in out
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["step"] == 2  # smoke checkpoints every 2 steps; step 3 failed
    assert all(torch.isfinite(v).all() for v in ckpt["nets"].values())


def test_cli_errors_exit_with_code_2(cache, tmp_path, monkeypatch, capsys):
    assert main(["evaluate", str(tmp_path / "missing.pt"), "--device", "cpu"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(train_args(tmp_path, cache)[:-1] + ["cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert main(train_args(tmp_path, cache)[:-1] + ["banana"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "pyro-scalor train: error: unknown device 'banana'; use auto, cpu, cuda or cuda:N\n"
    )
    assert main(train_args(tmp_path, cache, "--resume")) == 2
    assert "no checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(train_args(tmp_path, cache, "--steps", "0"))


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("train", ["--batch-size BATCH_SIZE", "videos per step (default: the preset's)"]),
        ("train", ["--lr LR", "learning rate (default: the preset's)", "(default: cpu-default)"]),
        ("evaluate", ["--data DATA, --preset DATA", "(default: 16)", "(default: 0.0)"]),
        ("generate", ["--disc-pres-prior", "(default: 0.1)", "--no-progress"]),
        ("track", ["--crop {center,none}", "(default: center)", "--max-frames"]),
    ],
)
def test_every_option_has_help_and_shows_its_default(command, expected, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # no line wrapping in the help text
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for piece in expected:
        assert piece in text, piece
    parser = __import__("pyro_scalor.cli", fromlist=["build_parser"]).build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    for action in sub._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
