"""Atomic checkpoints: model and optimiser state, step, random-number states and configs."""

from __future__ import annotations

import dataclasses
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from pyro_scalor.model.config import ModelConfig
from pyro_scalor.train.config import TrainConfig
from pyro_scalor.train.schedules import Schedule

#: the TrainConfig fields that hold a Schedule (rebuilt from dicts when a checkpoint is read)
SCHEDULE_FIELDS = tuple(
    f.name for f in dataclasses.fields(TrainConfig) if isinstance(f.default, Schedule)
)

FORMAT_VERSION = 1


def config_to_dict(cfg) -> dict:
    """A dataclass config (with nested schedules) as a plain dict."""
    return dataclasses.asdict(cfg)


def train_config_from_dict(d: dict) -> TrainConfig:
    """Inverse of :func:`config_to_dict` for a :class:`TrainConfig`."""
    d = dict(d)
    for key in SCHEDULE_FIELDS:
        if key in d:  # checkpoints written before lr_factor existed lack it
            d[key] = Schedule(**d[key])
    return TrainConfig(**d)


def rng_state() -> dict:
    """The states of torch's (CPU and, where available, CUDA), numpy's and Python's generators."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (saving global state)
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore generator states saved by :func:`rng_state`.

    States may have been mapped to a GPU when the checkpoint was loaded; generators take them
    back on the CPU. A saved CUDA state is restored when CUDA is available.
    """
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    random.setstate(state["python"])


def save_checkpoint(path: str | Path, **payload) -> Path:
    """Write ``payload`` to ``path`` atomically (temporary file, then rename); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload["format_version"] = FORMAT_VERSION
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; clear error if it is missing."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format {ckpt.get('format_version')}, expected {FORMAT_VERSION}"
        )
    ckpt["model_config"] = ModelConfig(**ckpt["model_config"])
    ckpt["train_config"] = train_config_from_dict(ckpt["train_config"])
    return ckpt
