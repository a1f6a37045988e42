"""The fault suite: hostile or damaged checkpoints, run folders in use, kills and signals during
training, damaged cache entries. Each case is listed with its result in
experiments/reliability/README.md."""

from __future__ import annotations

import logging
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pyro_scalor.api import Scalor
from pyro_scalor.data import generate_sequence, get_preset, load_dataset, load_or_generate
from pyro_scalor.data.cache import MARKER, cache_path
from pyro_scalor.train.checkpoint import CheckpointError, load_checkpoint
from pyro_scalor.train.config import RUN_PRESETS
from pyro_scalor.train.rundir import RunFolderError, RunLock, resumed_configs
from pyro_scalor.train.trainer import Trainer

SMOKE = RUN_PRESETS["smoke"]


class Evil:
    """Unpickling this object would run a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache")
    load_dataset("smoke", "train", num_sequences=SMOKE.train.num_train, cache_dir=folder)
    return folder


@pytest.fixture(scope="module")
def dataset(cache):
    return load_dataset("smoke", "train", num_sequences=SMOKE.train.num_train, cache_dir=cache)


def smoke_cfg(**changes):
    return SMOKE.train.replace(**{"log_every": 1, "checkpoint_every": 1, **changes})


def make_trainer(run_dir, cfg, dataset, *, model=None, **kwargs) -> Trainer:
    scalor = Scalor(model or SMOKE.model, seed=cfg.seed)
    return Trainer(
        scalor, cfg, run_dir, dataset=dataset, progress=False, tensorboard=False, **kwargs
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset):
    """A real checkpoint after 2 steps."""
    run_dir = tmp_path_factory.mktemp("trained")
    make_trainer(run_dir, smoke_cfg(steps=2), dataset).fit()
    return run_dir / "checkpoint.pt"


def refused_in_one_line(path: Path, reason: str = "") -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path} is not a readable pyro-scalor checkpoint (")
    assert "\n" not in message and reason in message
    return message


# ------------------------------------------------------------------------------------------
# checkpoints that are not data
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("how", ["torch.save", "pickle", "with-real-checkpoint"])
def test_a_malicious_checkpoint_does_not_run(tmp_path, trained, how):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    if how == "torch.save":
        torch.save({"format_version": 2, "nets": Evil(marker)}, path)
    elif how == "pickle":
        path.write_bytes(pickle.dumps(Evil(marker)))
    else:  # a genuine checkpoint with one hostile value slipped in
        ckpt = torch.load(trained, weights_only=True)
        ckpt["history"].append(Evil(marker))
        torch.save(ckpt, path)
    Evil(marker).__reduce__()  # building the payload does not run it
    assert not marker.exists()
    message = refused_in_one_line(path)
    with pytest.raises(CheckpointError):
        Scalor.from_checkpoint(path)
    assert not marker.exists(), "loading must not execute the pickled command"
    if how != "pickle":
        assert "system" in message  # names the code it refused to run


def test_truncated_empty_and_foreign_checkpoints_are_refused(tmp_path, trained):
    data = trained.read_bytes()
    cases = {
        "empty.pt": b"",
        "half.pt": data[: len(data) // 2],
        "last-byte-missing.pt": data[:-1],
        "text.pt": b"hello, this is not a checkpoint\n",
        "zeros.pt": bytes(len(data)),
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other-dict.pt")
    np.save(tmp_path / "array.npy", np.zeros(3))
    with zipfile.ZipFile(tmp_path / "archive.pt", "w") as z:
        z.writestr("readme.txt", "a zip, but not torch's")
    names = [*cases, "tensor.pt", "other-dict.pt", "array.npy", "archive.pt"]
    reasons = {"empty.pt": "empty", "tensor.pt": "Tensor", "other-dict.pt": "format_version"}
    for name in names:
        refused_in_one_line(tmp_path / name, reasons.get(name, ""))


def test_nothing_in_the_package_unpickles_user_files_except_convert():
    root = Path(__file__).resolve().parents[2] / "pyro_scalor"
    unsafe = re.compile(r"weights_only\s*=\s*False|pickle\.loads?\(|allow_pickle\s*=\s*True")
    hits = [
        (p.relative_to(root).as_posix(), line.strip())
        for p in root.rglob("*.py")
        for line in p.read_text().splitlines()
        if unsafe.search(line)
    ]
    assert [h[0] for h in hits] == ["train/checkpoint.py"], hits
    text = (root / "train/checkpoint.py").read_text()
    assert text.index(hits[0][1]) > text.index("def convert_checkpoint(")


# ------------------------------------------------------------------------------------------
# run folders
def test_a_second_training_on_a_locked_folder_is_refused(tmp_path, dataset):
    first = make_trainer(tmp_path, smoke_cfg(steps=1), dataset)
    with pytest.raises(RunFolderError, match=f"in use by another training \\(pid {os.getpid()}\\)"):
        make_trainer(tmp_path, smoke_cfg(steps=1), dataset)
    first.fit()  # releases the lock when done
    make_trainer(tmp_path, smoke_cfg(steps=2), dataset, resume=True).close()


def test_a_lock_held_by_another_process_names_its_pid(tmp_path, dataset):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pyro_scalor.train.rundir import RunLock; "
            "lock = RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderError, match=f"pid {holder.pid}\\)"):
            make_trainer(tmp_path, smoke_cfg(steps=1), dataset)
    finally:
        holder.kill()
        holder.wait()
    # the OS released the killed holder's lock
    with RunLock(tmp_path) as lock:
        assert lock.held and lock.holder() == os.getpid()


def test_a_used_folder_needs_resume_or_force(tmp_path, dataset):
    make_trainer(tmp_path, smoke_cfg(steps=2), dataset).fit()
    with pytest.raises(RunFolderError, match="already holds a training checkpoint; use --resume"):
        make_trainer(tmp_path, smoke_cfg(steps=1), dataset)
    assert load_checkpoint(tmp_path)["step"] == 2, "the refused run must not touch it"
    with pytest.raises(RunFolderError, match="pick one"):
        make_trainer(tmp_path, smoke_cfg(steps=1), dataset, resume=True, force=True)
    (tmp_path / "tb").mkdir()
    trainer = make_trainer(tmp_path, smoke_cfg(steps=1), dataset, force=True)
    trainer.fit()
    backups = sorted(tmp_path.glob("checkpoint.pt.bak-*"))
    assert backups == [trainer.backup]
    assert load_checkpoint(backups[0])["step"] == 2 and load_checkpoint(tmp_path)["step"] == 1
    assert len(list(tmp_path.glob("tb.bak-*"))) == 1


def test_resume_takes_the_runs_settings_and_accepts_only_runtime_changes(tmp_path, dataset):
    cfg = smoke_cfg(steps=2, seq_len=2, checkpoint_every=2)  # settings the preset does not have
    make_trainer(tmp_path, cfg, dataset).fit()
    model, train = resumed_configs(tmp_path, {"steps": 3, "threads": 1, "log_every": 5})
    assert model == SMOKE.model
    assert train == cfg.replace(steps=3, log_every=5), "the run's own settings, not the preset's"
    assert resumed_configs(tmp_path, {"seq_len": 2})[1] == cfg, "an unchanged value is accepted"
    with pytest.raises(RunFolderError, match="other settings: lr 0.0001 \\(given 0.01\\)"):
        resumed_configs(tmp_path, {"lr": 0.01, "steps": 3})
    with make_trainer(tmp_path, train, dataset, model=model, resume=True) as trainer:
        assert trainer.step == 2
    with pytest.raises(RunFolderError, match="model config differs .*hidden_dim 16 \\(given 8\\)"):
        make_trainer(tmp_path, train, dataset, model=SMOKE.model.replace(hidden_dim=8), resume=True)


# ------------------------------------------------------------------------------------------
# kills and signals during training (a child process trains; the parent kills it)
CHILD = textwrap.dedent(
    """
    import io, os, signal, sys
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from pyro_scalor.api import Scalor
    from pyro_scalor.data import load_dataset
    from pyro_scalor.train.config import RUN_PRESETS
    from pyro_scalor.train.trainer import Trainer, TrainingInterrupted

    run_dir, cache = sys.argv[1], sys.argv[2]
    steps, die_in_save = int(sys.argv[3]), int(sys.argv[4])
    smoke = RUN_PRESETS["smoke"]
    cfg = smoke.train.replace(steps=steps, log_every=1, checkpoint_every=1)
    if die_in_save:  # SIGKILL itself half-way through writing that checkpoint
        real, calls = torch.save, [0]
        def save(obj, f, *args, **kwargs):
            calls[0] += 1
            if calls[0] == die_in_save:
                buf = io.BytesIO()
                real(obj, buf)
                f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return real(obj, f, *args, **kwargs)
        torch.save = save
    data = load_dataset("smoke", "train", num_sequences=cfg.num_train, cache_dir=cache)
    resume = (Path(run_dir) / "checkpoint.pt").exists()
    scalor = Scalor(cfg.model_config(smoke.model), seed=cfg.seed)
    trainer = Trainer(scalor, cfg, run_dir, dataset=data, resume=resume, progress=False,
                      tensorboard=False)
    print("ready", flush=True)
    try:
        trainer.fit()
    except TrainingInterrupted as err:  # what the command line does with it
        print(err, flush=True)
        sys.exit(err.exit_code)
    """
)


def child(tmp_path, run_dir, cache, steps, die_in_save=0) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    args = [sys.executable, str(script), str(run_dir), str(cache), str(steps), str(die_in_save)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(run_dir: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not (run_dir / "checkpoint.pt").exists() and proc.poll() is None:
        assert time.monotonic() < end, "no checkpoint appeared"
        time.sleep(0.01)


def uninterrupted(tmp_path, dataset, steps) -> Trainer:
    trainer = make_trainer(tmp_path / "straight", smoke_cfg(steps=steps), dataset)
    trainer.fit()
    return trainer


def assert_same_run(run_dir: Path, reference: Trainer) -> None:
    ckpt = load_checkpoint(run_dir)
    assert ckpt["step"] == reference.step
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(ckpt["history"]) == strip(reference.history)
    for k, v in reference.scalor.nets.state_dict().items():
        assert torch.equal(ckpt["nets"][k], v), k


def test_sigkill_at_random_points_then_resume_matches(tmp_path, cache, dataset):
    steps = 8
    reference = uninterrupted(tmp_path, dataset, steps)
    run_dir, rng, kills = tmp_path / "killed", random.Random(18), 0
    for _ in range(3):
        proc = child(tmp_path, run_dir, cache, steps)
        assert proc.stdout.readline().strip() == "ready"
        wait_for_checkpoint(run_dir, proc)
        time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        rc = proc.wait()
        assert rc in (0, -signal.SIGKILL), proc.stderr.read()
        if rc == 0:
            break
    else:
        proc = child(tmp_path, run_dir, cache, steps)
        assert proc.wait() == 0, proc.stderr.read()
    assert kills >= 1, "at least one kill must land mid-run"
    assert_same_run(run_dir, reference)
    assert not list(run_dir.glob("*.tmp")) and not (run_dir / "train.pid").exists()


def test_sigkill_during_a_checkpoint_write_then_resume_matches(tmp_path, cache, dataset):
    steps = 4
    reference = uninterrupted(tmp_path, dataset, steps)
    run_dir = tmp_path / "killed"
    proc = child(tmp_path, run_dir, cache, steps, die_in_save=3)  # dies writing step 3
    assert proc.wait() == -signal.SIGKILL
    temporaries = list(run_dir.glob("checkpoint.pt*.tmp"))
    assert len(temporaries) == 1 and temporaries[0].stat().st_size > 0
    assert load_checkpoint(run_dir)["step"] == 2, "the previous checkpoint is intact"
    proc = child(tmp_path, run_dir, cache, steps)
    assert proc.wait() == 0, proc.stderr.read()
    assert not list(run_dir.glob("*.tmp")), "the killed writer's temporary file is removed"
    assert_same_run(run_dir, reference)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_a_resumable_checkpoint_and_reports_it(
    tmp_path, cache, dataset, signum, code
):
    run_dir = tmp_path / "run"
    proc = child(tmp_path, run_dir, cache, 200)
    assert proc.stdout.readline().strip() == "ready"
    wait_for_checkpoint(run_dir, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    step = load_checkpoint(run_dir)["step"]
    assert out.strip() == f"interrupted at step {step} of 200; rerun with --resume"
    with make_trainer(run_dir, smoke_cfg(steps=200), dataset, resume=True) as trainer:
        assert trainer.step == step and len(trainer.history) == step


# ------------------------------------------------------------------------------------------
# a cache that verifies
@pytest.mark.parametrize("damage", ["truncated", "zero-bytes", "same-size-garbage", "missing"])
@pytest.mark.parametrize("name", ["video.npy", "boxes.npy"])
def test_a_damaged_cache_entry_is_named_and_rebuilt(tmp_path, caplog, damage, name):
    config = get_preset("smoke")
    _, path = load_or_generate(config, "val", 3, cache_dir=tmp_path)
    file = path / name
    size = file.stat().st_size
    if damage == "truncated":
        os.truncate(file, size - 100)
    elif damage == "zero-bytes":
        os.truncate(file, 0)
    elif damage == "same-size-garbage":
        data = bytearray(file.read_bytes())
        data[-64:] = os.urandom(64)  # the .npy header stays valid
        file.write_bytes(bytes(data))
    else:
        file.unlink()
    with caplog.at_level(logging.WARNING, logger="pyro_scalor.data.cache"):
        arrays, again = load_or_generate(config, "val", 3, cache_dir=tmp_path)
    assert again == path
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(path) in w and name in w and "rebuilding" in w for w in warnings), warnings
    for i in range(3):
        seq = generate_sequence(config, "val", i)
        np.testing.assert_array_equal(arrays["video"][i], seq.video)
        np.testing.assert_array_equal(arrays["boxes"][i], seq.boxes)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pyro_scalor.data.cache"):
        load_or_generate(config, "val", 3, cache_dir=tmp_path)
    assert not caplog.records, "the rebuilt entry verifies"


def test_stale_temporary_folders_of_dead_writers_are_removed(tmp_path):
    config = get_preset("smoke")
    path = cache_path(config, "val", 2, tmp_path)
    path.parent.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = path.parent / f".{path.name}.tmp-{dead.pid}-abcd1234"
    live = path.parent / f".{path.name}.tmp-{os.getppid()}-abcd1234"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "video.npy").write_bytes(b"\0" * 1000)
    load_or_generate(config, "val", 2, cache_dir=tmp_path)
    assert not stale.exists(), "a dead writer's folder is removed"
    assert live.exists(), "a live writer's folder is left alone"
    assert (path / MARKER).is_file()
