"""The checkpoint format: plain data read with weights_only=True, random states, atomic writes,
old-format conversion."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from pyro_scalor.api import Scalor
from pyro_scalor.train import checkpoint as ck
from pyro_scalor.train.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    OldCheckpointFormatError,
    config_to_dict,
    convert_checkpoint,
    load_checkpoint,
    remove_stale_temporaries,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from pyro_scalor.train.config import RUN_PRESETS

SMOKE = RUN_PRESETS["smoke"]


def draws() -> tuple:
    return (
        torch.rand(3).tolist(),
        np.random.rand(3).tolist(),  # noqa: NPY002 (the global generator is what is saved)
        np.random.randn(),  # noqa: NPY002 (uses numpy's cached second gaussian)
        [random.random() for _ in range(3)],
        random.gauss(0, 1),
    )


def write(path, **extra):
    scalor = Scalor(SMOKE.model, seed=0)
    payload = dict(
        nets=scalor.nets.state_dict(),
        step=5,
        seconds=1.5,
        rng=rng_state(),
        model_config=config_to_dict(SMOKE.model),
        train_config=config_to_dict(SMOKE.train),
        tracking_config=config_to_dict(scalor.tracking),
        history=[{"step": 1, "train_loss": 2.0}],
    )
    payload.update(extra)
    return save_checkpoint(path, **payload)


def old_format(path):
    """A checkpoint as format 1 wrote it: numpy's state pickled as numpy objects."""
    scalor = Scalor(SMOKE.model, seed=0)
    payload = dict(
        nets=scalor.nets.state_dict(),
        step=5,
        seconds=1.5,
        rng={
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),  # noqa: NPY002
            "python": random.getstate(),
        },
        model_config=dict(config_to_dict(SMOKE.model), inference_suppression=False),
        train_config=dict(config_to_dict(SMOKE.train), eval_sequences=2),
        history=[],
        format_version=1,
    )
    torch.save(payload, path)
    return path


# ------------------------------------------------------------------------------------------
def test_random_states_are_plain_data_and_restore_exactly():
    np.random.seed(3)  # noqa: NPY002
    np.random.randn()  # noqa: NPY002 (leaves a cached gaussian: has_gauss = 1)
    random.seed(4)
    random.gauss(0, 1)  # leaves Python's gauss_next set
    state = rng_state()
    assert isinstance(state["numpy"]["key"], torch.Tensor) and state["numpy"]["has_gauss"] == 1
    assert all(isinstance(x, int) for x in state["python"][1])
    first = draws()
    set_rng_state(state)
    assert draws() == first


def test_a_checkpoint_is_read_with_weights_only(tmp_path):
    path = write(tmp_path / "checkpoint.pt")
    raw = torch.load(path, weights_only=True)  # plain torch, no allow-listed globals
    assert raw["format_version"] == FORMAT_VERSION == 2
    assert isinstance(raw["model_config"], dict) and isinstance(raw["train_config"], dict)
    ckpt = load_checkpoint(tmp_path)  # a run folder works too
    assert ckpt["model_config"] == SMOKE.model and ckpt["train_config"] == SMOKE.train
    assert ckpt["step"] == 5 and ckpt["history"] == [{"step": 1, "train_loss": 2.0}]
    set_rng_state(ckpt["rng"])  # the loaded state restores
    loaded = Scalor.from_checkpoint(path)
    assert loaded.step == 5 and loaded.train_config == SMOKE.train
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_writes_are_fsynced_and_leave_no_temporary(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(ck.os, "fsync", lambda fd: synced.append(fd) or real(fd))
    write(tmp_path / "checkpoint.pt")
    assert len(synced) >= 1, "the temporary file is fsynced before the rename"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_temporaries_of_dead_writers_are_removed(tmp_path):
    path = tmp_path / "checkpoint.pt"
    dead = tmp_path / "checkpoint.pt.999999999.abcd1234.tmp"  # no such pid
    legacy = tmp_path / "checkpoint.ptq1w2e3.tmp"  # no pid in the name
    alive = tmp_path / f"checkpoint.pt.{os.getppid()}.abcd1234.tmp"  # a live writer
    for p in (dead, legacy, alive):
        p.write_bytes(b"")
    assert sorted(remove_stale_temporaries(path)) == sorted([dead, legacy])
    assert alive.exists()
    alive.unlink()
    dead.write_bytes(b"")
    write(path)  # the next write cleans up too
    assert not dead.exists()


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda raw: raw.update(format_version=99), "it has format 99; this version reads"),
        (lambda raw: raw.pop("format_version"), "it has no pyro-scalor format_version"),
        (lambda raw: raw.pop("nets"), "it lacks nets"),
        (lambda raw: raw.update(model_config={"no_such": 1}), "its configs are not valid"),
    ],
)
def test_format_and_content_errors_are_one_line(tmp_path, change, reason):
    path = write(tmp_path / "checkpoint.pt")
    raw = torch.load(path, weights_only=True)
    change(raw)
    torch.save(raw, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path} is not a readable pyro-scalor checkpoint ({reason}")
    assert "\n" not in message


def test_old_format_is_refused_then_converted(tmp_path):
    old = old_format(tmp_path / "old.pt")
    with pytest.raises(OldCheckpointFormatError) as info:
        load_checkpoint(old)
    message = str(info.value)
    assert "\n" not in message and "convert-checkpoint" in message and str(old) in message
    new = convert_checkpoint(old, tmp_path / "new.pt")
    ckpt = load_checkpoint(new)
    assert ckpt["step"] == 5 and ckpt["model_config"] == SMOKE.model
    assert ckpt["tracking_config"]["suppression"] is False  # format 1 kept it in the model
    set_rng_state(ckpt["rng"])
    # a current file is copied as it is
    again = convert_checkpoint(new, tmp_path / "again.pt")
    assert load_checkpoint(again)["step"] == 5
