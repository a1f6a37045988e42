"""Checkpoints that are data, not code: model and optimiser state, step, random-number states and
configs, written atomically and read with ``torch.load(weights_only=True)``.

Everything in a checkpoint is a tensor or a plain Python value (dicts, lists, tuples, numbers,
strings, None): numpy's generator state is stored as its key array (a tensor) and integers,
Python's as a tuple of integers, configs as plain dicts. So reading a checkpoint never runs code,
whoever wrote the file. A file that cannot be read as one raises :class:`CheckpointError`
("X is not a readable pyro-scalor checkpoint (reason)"). Checkpoints of format 1 (written by
older versions, which pickled numpy objects) are refused with :class:`OldCheckpointFormatError`;
:func:`convert_checkpoint` rewrites one in the current format, and is the only function here that
unpickles arbitrary objects: the user runs it knowingly on a file they trust.

Writing: a temporary ``<name>.<pid>.<random>.tmp`` beside the target, flushed and fsynced, then
renamed over the target (and the folder fsynced), so a reader sees the old or the new checkpoint,
never a part. Temporary files of writers that were killed are removed by the next write.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import random
import re
import uuid
import zipfile
from pathlib import Path

import numpy as np
import torch

from pyro_scalor.data.cache import process_alive
from pyro_scalor.model.config import ModelConfig, TrackingConfig
from pyro_scalor.train.config import TrainConfig

log = logging.getLogger(__name__)

#: The format :func:`save_checkpoint` writes and :func:`load_checkpoint` reads.
FORMAT_VERSION = 2

#: The command line that converts an old checkpoint (shown in the refusal message).
CONVERT_COMMAND = "pyro-scalor convert-checkpoint"

#: Keys every checkpoint holds (``optimizer``, ``rng``, ``seconds`` and ``history`` are needed
#: only to resume training).
REQUIRED_KEYS = ("format_version", "nets", "step", "model_config", "train_config")

#: The globals that format-1 checkpoints pickled (numpy's generator state), over numpy versions.
FORMAT1_GLOBALS = frozenset(
    {
        "numpy.dtype",
        "numpy.ndarray",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.dtypes.UInt32DType",
        "_codecs.encode",
    }
)


class CheckpointError(ValueError):
    """A file is not a readable pyro-scalor checkpoint; the message is one line naming it."""

    def __init__(self, path: str | Path, reason: str) -> None:
        reason = " ".join(str(reason).split())
        if len(reason) > 200:
            reason = reason[:197] + "..."
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path} is not a readable pyro-scalor checkpoint ({reason})")


class OldCheckpointFormatError(CheckpointError):
    """A checkpoint of format 1, which cannot be read without unpickling numpy objects."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(
            path,
            "it is in the old format 1, which pickles numpy objects and cannot be loaded "
            f"safely; if you trust the file, convert it once with: {CONVERT_COMMAND} "
            f"{path} NEW.pt",
        )


# ------------------------------------------------------------------------------------------
# configs
def config_to_dict(cfg) -> dict:
    """A dataclass config (with nested schedules) as a plain dict."""
    return dataclasses.asdict(cfg)


# ------------------------------------------------------------------------------------------
# random-number states
def rng_state() -> dict:
    """The states of torch's (CPU and, where available, CUDA), numpy's and Python's generators,
    as tensors and plain values."""
    kind, key, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (global state)
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": (int(version), tuple(int(x) for x in internal), gauss_next),
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
    n = state["numpy"]
    key = n["key"].cpu().numpy().astype(np.uint32)
    np.random.set_state((n["kind"], key, n["pos"], n["has_gauss"], n["cached_gaussian"]))  # noqa: NPY002
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


# ------------------------------------------------------------------------------------------
# writing
def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete ``<name>*.tmp`` files beside ``path`` left by writers that were killed (their pid
    is gone, or the name carries none); returns the deleted paths."""
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f"{path.name}*.tmp"):
        parts = tmp.name[len(path.name) :].split(".")
        pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
        if pid is not None and (pid == os.getpid() or process_alive(pid)):
            continue
        try:
            tmp.unlink()
        except FileNotFoundError:
            continue
        log.info("removed %s, left by an interrupted checkpoint write", tmp)
        removed.append(tmp)
    return removed


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(path: str | Path, **payload) -> Path:
    """Write ``payload`` (tensors and plain values) to ``path`` atomically; returns the path.

    The payload is written to a temporary file that is fsynced and then renamed over ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    payload["format_version"] = FORMAT_VERSION
    tmp = path.parent / f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# ------------------------------------------------------------------------------------------
# reading
def checkpoint_file(path: str | Path) -> Path:
    """``path`` itself, or ``path/checkpoint.pt`` when ``path`` is a run folder."""
    path = Path(path)
    return path / "checkpoint.pt" if path.is_dir() else path


def _unsafe_globals(path: Path) -> list[str]:
    """The globals a file's pickle would import (read without unpickling), or [] if unknown."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 (not a torch zip file: nothing more to learn)
        return []


def _read(path: Path, map_location) -> object:
    """``torch.load(weights_only=True)`` of ``path``; every failure as a CheckpointError."""
    try:
        if path.stat().st_size == 0:
            raise CheckpointError(path, "the file is empty")
        if not zipfile.is_zipfile(path):
            raise CheckpointError(
                path, "it is no torch checkpoint archive: truncated, or another kind of file"
            )
        return torch.load(path, map_location=map_location, weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as err:
        unsafe = _unsafe_globals(path)
        if unsafe and set(unsafe) <= FORMAT1_GLOBALS:
            raise OldCheckpointFormatError(path) from None
        if unsafe:
            raise CheckpointError(
                path, f"it holds code or objects that are not data: {', '.join(unsafe[:4])}"
            ) from None
        raise CheckpointError(path, f"{type(err).__name__}: {_first_sentence(err)}") from None
    except Exception as err:  # noqa: BLE001 (any failure to parse a file means unreadable)
        raise CheckpointError(path, f"{type(err).__name__}: {_first_sentence(err)}") from None


def _first_sentence(err: Exception) -> str:
    text = re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", " ".join(str(err).split()))
    return text.split(". ")[0] if text else "no detail"


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (a file or a run folder).

    Returns its dict with ``model_config`` and ``train_config`` as config objects. Raises
    FileNotFoundError if there is none, :class:`OldCheckpointFormatError` for format 1 and
    :class:`CheckpointError` for anything else that is not a readable checkpoint. Never runs
    code stored in the file.
    """
    path = checkpoint_file(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = _read(path, map_location)
    if not isinstance(ckpt, dict):
        raise CheckpointError(path, f"it holds a {type(ckpt).__name__}, not a checkpoint dict")
    version = ckpt.get("format_version")
    if version is None:
        raise CheckpointError(path, "it has no pyro-scalor format_version")
    if version == 1:
        raise OldCheckpointFormatError(path)
    if version != FORMAT_VERSION:
        raise CheckpointError(
            path, f"it has format {version!r}; this version reads format {FORMAT_VERSION}"
        )
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(path, f"it lacks {', '.join(missing)}")
    try:
        ckpt["model_config"] = ModelConfig.from_dict(ckpt["model_config"])
        ckpt["train_config"] = TrainConfig.from_dict(ckpt["train_config"])
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise CheckpointError(path, f"its configs are not valid: {err}") from None
    return ckpt


def convert_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Rewrite the format-1 checkpoint ``src`` as a current one at ``dst``; returns ``dst``.

    This unpickles ``src`` with torch's full unpickler, which can run code stored in it: call
    it only on a file you trust. A ``src`` that is already current is copied as it is.
    """
    src, dst = checkpoint_file(src), Path(dst)
    if not src.exists():
        raise FileNotFoundError(f"no checkpoint at {src}")
    try:
        load_checkpoint(src)
        current = True
    except OldCheckpointFormatError:
        current = False
    if current:
        ckpt = _read(src, "cpu")
    else:
        ckpt = torch.load(src, map_location="cpu", weights_only=False)  # the user trusts it
        rng = ckpt.get("rng", {})
        if "numpy" in rng and not isinstance(rng["numpy"], dict):
            kind, key, pos, has_gauss, cached = rng["numpy"]
            rng["numpy"] = {
                "kind": str(kind),
                "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached_gaussian": float(cached),
            }
        if "python" in rng:
            version, internal, gauss_next = rng["python"]
            rng["python"] = (int(version), tuple(int(x) for x in internal), gauss_next)
        for key in ("model_config", "train_config"):
            if dataclasses.is_dataclass(ckpt.get(key)):
                ckpt[key] = config_to_dict(ckpt[key])
        if "tracking_config" not in ckpt and isinstance(ckpt.get("model_config"), dict):
            # the tracking switch lived in the model config then
            tracking = TrackingConfig.from_model_dict(ckpt["model_config"])
            ckpt["tracking_config"] = config_to_dict(tracking)
    ckpt.pop("format_version", None)
    save_checkpoint(dst, **ckpt)
    load_checkpoint(dst)  # the result must read safely
    log.info("converted %s to %s (format %d)", src, dst, FORMAT_VERSION)
    return dst
