"""Faults seen through the command line: exit codes and one-line messages of ``train`` and
``convert-checkpoint`` (the library side is in tests/train/test_faults.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pyro_scalor.cli import main
from pyro_scalor.train.checkpoint import load_checkpoint
from pyro_scalor.train.rundir import RunLock


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def train_args(run_dir, cache, *extra) -> list[str]:
    return ["train", "--preset", "smoke", "--run-dir", str(run_dir), "--cache-dir", str(cache),
            "--no-progress", "--device", "cpu", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache):
    """A smoke run trained with a non-default checkpoint interval: (run_dir)."""
    run_dir = tmp_path_factory.mktemp("run")
    assert main(train_args(run_dir, cache, "--checkpoint-every", "1", "--steps", "2")) == 0
    return run_dir


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_resume_takes_the_runs_own_settings(trained, capsys):
    # the run was trained with --checkpoint-every 1 and --steps 2: resuming needs neither
    cache = trained.parent / "cache_unused"
    assert main(train_args(trained, cache, "--resume", "--steps", "3")) == 0
    ckpt = load_checkpoint(trained)
    assert ckpt["step"] == 3 and ckpt["train_config"].checkpoint_every == 1


def test_train_into_a_used_folder_is_refused_without_resume_or_force(trained, cache, capsys):
    step = load_checkpoint(trained)["step"]
    assert main(train_args(trained, cache, "--steps", "1")) == 2
    assert "--resume" in one_line_error(capsys) and load_checkpoint(trained)["step"] == step
    assert main(train_args(trained, cache, "--resume", "--force")) == 2
    assert "pick one" in one_line_error(capsys)


def test_force_starts_over_and_keeps_a_backup(tmp_path, cache, capsys):
    run = tmp_path / "run"
    assert main(train_args(run, cache, "--steps", "2")) == 0
    assert main(train_args(run, cache, "--steps", "1", "--force")) == 0
    assert load_checkpoint(run)["step"] == 1
    (backup,) = run.glob("checkpoint.pt.bak-*")
    assert load_checkpoint(backup)["step"] == 2


def test_a_locked_run_folder_is_refused_naming_the_holder(tmp_path, cache, capsys):
    run = tmp_path / "run"
    with RunLock(run):
        assert main(train_args(run, cache, "--steps", "1")) == 2
        assert f"pid {os.getpid()}" in one_line_error(capsys)
    assert not (run / "checkpoint.pt").exists()


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty"), (b"not a checkpoint at all", "foreign"), (None, "truncated")],
)
def test_unreadable_checkpoints_give_one_line_and_exit_2(trained, tmp_path, capsys, content,
                                                         reason):  # fmt: skip
    bad = tmp_path / "checkpoint.pt"
    if content is None:
        data = (trained / "checkpoint.pt").read_bytes()
        content = data[: len(data) // 3]
    bad.write_bytes(content)
    args = ["evaluate", str(bad), "--data", "smoke", "--num-sequences", "1", "--no-progress"]
    assert main(args) == 2
    err = one_line_error(capsys)
    assert "is not a readable pyro-scalor checkpoint" in err, reason


def test_an_old_pickled_checkpoint_is_refused_then_converted(trained, tmp_path, capsys):
    """A format-1 checkpoint (numpy RNG state pickled as numpy objects) is refused with the
    command that converts it; ``convert-checkpoint`` writes one that loads safely."""
    ckpt = torch.load(trained / "checkpoint.pt", weights_only=True)
    ckpt["format_version"] = 1
    ckpt["rng"]["numpy"] = np.random.get_state()  # noqa: NPY002 (an old checkpoint's state)
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    assert main(["evaluate", str(old), "--data", "smoke", "--no-progress"]) == 2
    assert "convert-checkpoint" in one_line_error(capsys)
    new = tmp_path / "new.pt"
    assert main(["convert-checkpoint", str(old), str(new)]) == 0
    assert load_checkpoint(new)["step"] == ckpt["step"]


def run_train_process(run_dir: Path, cache: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "pyro_scalor", "-q", *train_args(run_dir, cache, "--steps",
            "400", "--checkpoint-every", "1", "--threads", "1")]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_train_interrupted_by_a_signal_exits_with_its_code(tmp_path, cache, signum, code):
    run_dir = tmp_path / "run"
    proc = run_train_process(run_dir, cache)
    end = time.monotonic() + 120
    while not (run_dir / "checkpoint.pt").exists():
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    step = load_checkpoint(run_dir)["step"]
    assert f"interrupted at step {step} of 400; rerun with --resume" in out
    assert "trained" not in out
