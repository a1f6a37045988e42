"""Run folders that protect themselves: one training at a time, no silent overwrite, resume
from the run's own settings.

A run folder holds ``checkpoint.pt``, the TensorBoard folder ``tb`` and, while a training
runs, a lock ``train.lock`` (an OS file lock, released by the OS even if the process is
killed) with the holder's pid in ``train.pid``. The rules, each a plain function raising
:class:`RunFolderError` (a ValueError with a one-line message) for the command line to print:

* :class:`RunLock` - a second training on a locked folder refuses, naming the holder's pid.
* :func:`prepare_run_folder` - a folder that has a checkpoint is only trained into with
  ``resume`` (continue it) or ``force`` (start over; the old checkpoint and TensorBoard folder
  are kept as ``checkpoint.pt.bak-<time>`` and ``tb.bak-<time>``).
* :func:`resumed_configs` - resuming takes the model and training configs from the
  checkpoint; only :data:`RUNTIME_FIELDS` may be changed, any other requested change is named
  and refused. :func:`check_resume` compares given configs with a checkpoint's the same way.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

import filelock

from pyro_scalor.train.checkpoint import load_checkpoint

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
TENSORBOARD = "tb"
LOCK = "train.lock"
PID = "train.pid"

#: TrainConfig fields a resumed run may change: how long and how it runs, and how often it
#: logs and saves, never what it learns (the device, not part of the config, may change too).
RUNTIME_FIELDS = (
    "steps",
    "max_seconds",
    "threads",
    "cuda_graph",
    "checkpoint_every",
    "log_every",
    "image_every",
)


class RunFolderError(ValueError):
    """A run folder refuses the requested training (locked, used, or a resume mismatch)."""


class RunLock:
    """An exclusive, non-blocking lock on a run folder, with the holder's pid beside it.

    ``acquire()`` raises :class:`RunFolderError` naming the holder's pid when another training
    (in this or another process) holds the folder. Usable as a context manager.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self._lock = filelock.FileLock(str(self.run_dir / LOCK), timeout=0)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._lock.is_locked

    def holder(self) -> int | None:
        """The pid recorded by the current holder, if any was recorded."""
        try:
            text = (self.run_dir / PID).read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def acquire(self) -> RunLock:
        """Take the lock (or refuse at once); records this process's pid."""
        if self.held:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except filelock.Timeout:
            pid = self.holder()
            who = f"pid {pid}" if pid is not None else "an unknown process"
            raise RunFolderError(
                f"{self.run_dir} is in use by another training ({who}); wait for it to "
                "finish or use another --run-dir"
            ) from None
        (self.run_dir / PID).write_text(f"{os.getpid()}\n")
        return self

    def release(self) -> None:
        """Give the lock back (no-op if not held)."""
        if not self.held:
            return
        try:
            (self.run_dir / PID).unlink()
        except OSError:
            pass
        self._lock.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def backup_run(run_dir: str | Path) -> Path:
    """Move the folder's checkpoint (and TensorBoard folder) aside to ``*.bak-<time>``;
    returns the checkpoint's backup path."""
    run_dir = Path(run_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = run_dir / f"{CHECKPOINT}.bak-{stamp}"
    n = 1
    while backup.exists():
        backup = run_dir / f"{CHECKPOINT}.bak-{stamp}-{n}"
        n += 1
    os.replace(run_dir / CHECKPOINT, backup)
    tb = run_dir / TENSORBOARD
    if tb.is_dir():
        os.replace(tb, run_dir / f"{TENSORBOARD}.bak-{backup.name.split('.bak-', 1)[1]}")
    log.warning("kept the previous checkpoint of %s as %s", run_dir, backup)
    return backup


def prepare_run_folder(run_dir: str | Path, *, resume: bool, force: bool) -> Path | None:
    """Apply the overwrite rules before training into ``run_dir``; returns the backup path
    when ``force`` moved an existing checkpoint aside, else None.

    Refuses (:class:`RunFolderError`) a folder with a checkpoint unless ``resume`` or
    ``force``, and ``resume`` together with ``force``. With ``resume`` and no checkpoint it
    raises FileNotFoundError.
    """
    run_dir = Path(run_dir)
    ckpt = run_dir / CHECKPOINT
    if resume and force:
        raise RunFolderError("--resume continues a run and --force starts it over; pick one")
    if resume:
        if not ckpt.exists():
            raise FileNotFoundError(f"no checkpoint at {ckpt} to resume")
        return None
    if not ckpt.exists():
        return None
    if force:
        return backup_run(run_dir)
    raise RunFolderError(
        f"{run_dir} already holds a training checkpoint; use --resume to continue it or "
        "--force to start over (the old checkpoint is kept as a backup)"
    )


def config_differences(saved, given, ignore=()) -> list[str]:
    """``"field saved (given new)"`` for each field of two dataclass configs that differs."""
    return [
        f"{f.name} {getattr(saved, f.name)!r} (given {getattr(given, f.name)!r})"
        for f in dataclasses.fields(saved)
        if f.name not in ignore and getattr(saved, f.name) != getattr(given, f.name)
    ]


def check_resume(path, saved_model, saved_train, model, train) -> None:
    """Refuse to resume the checkpoint at ``path`` with configs that differ from its own
    beyond :data:`RUNTIME_FIELDS`, naming every difference."""
    differ = config_differences(saved_model, model)
    if differ:
        raise RunFolderError(
            f"cannot resume {path}: its model config differs from the one given in "
            f"{', '.join(differ)}; use a new --run-dir or --force"
        )
    differ = config_differences(saved_train, train, ignore=RUNTIME_FIELDS)
    if differ:
        raise RunFolderError(
            f"cannot resume {path}: its training config differs from the one given in "
            f"{', '.join(differ)} (only {', '.join(RUNTIME_FIELDS)} may change); use a new "
            "--run-dir or --force"
        )


def resumed_configs(run_dir: str | Path, changes: dict | None = None):
    """The ``(model_config, train_config)`` to resume ``run_dir`` with: the checkpoint's own,
    with ``changes`` to :data:`RUNTIME_FIELDS` applied.

    ``changes`` maps TrainConfig fields to values the user asked for (e.g. the command line's
    explicit flags). A change to any other field that differs from the checkpoint's value is
    refused with :class:`RunFolderError` naming it; one equal to it is accepted.
    """
    path = Path(run_dir) / CHECKPOINT
    ckpt = load_checkpoint(path)
    model, train = ckpt["model_config"], ckpt["train_config"]
    changes = dict(changes or {})
    refused = [
        f"{k} {getattr(train, k, None)!r} (given {v!r})"
        for k, v in changes.items()
        if k not in RUNTIME_FIELDS and getattr(train, k, None) != v
    ]
    if refused:
        raise RunFolderError(
            f"cannot resume {path}: it was trained with other settings: {', '.join(refused)} "
            f"(only {', '.join(RUNTIME_FIELDS)} and the device may change); use a new "
            "--run-dir or --force"
        )
    runtime = {k: v for k, v in changes.items() if k in RUNTIME_FIELDS}
    return model, train.replace(**runtime)
