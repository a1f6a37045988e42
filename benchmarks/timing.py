"""Timing of SCALOR training steps, one fresh model per input, interleaved over the inputs."""

from __future__ import annotations

import logging
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyro
import torch

from pyro_scalor.model.config import ModelConfig
from pyro_scalor.train.graphed import GRAPH_WARMUP

from .inputs import BenchInput
from .machine import device_name, load_average
from .memory import PeakMemory

log = logging.getLogger(__name__)


class TrainStep:
    """One SCALOR training step, exactly as :meth:`Trainer.fit` does it.

    Builds a fresh :class:`pyro_scalor.api.Scalor` for ``config`` on ``device`` (seeded) and a
    :class:`Trainer` (no tensorboard, no dataset loading) for its objective, optimiser and
    ``step_kwargs``. Calling it with a video batch (B, T, C, H, W) on ``device`` runs one step
    and returns the loss. ``cuda_graph`` (CUDA devices) replays the step as a CUDA graph after
    :data:`GRAPH_WARMUP` eager steps, as ``TrainConfig.cuda_graph`` does in training.
    """

    def __init__(
        self, config: ModelConfig, device: torch.device, seed: int = 0, cuda_graph: bool = False
    ) -> None:
        from pyro_scalor.api import Scalor
        from pyro_scalor.train.config import TrainConfig
        from pyro_scalor.train.trainer import Trainer

        self.scalor = Scalor(config, device=device, seed=seed)
        self.cfg = TrainConfig(seed=seed, cuda_graph=cuda_graph)
        # the benchmark neither saves nor logs to tensorboard: the run folder only holds the
        # trainer's lock, and goes with this object
        self._run_dir = tempfile.TemporaryDirectory(prefix="pyro-scalor-bench-")
        self.trainer = Trainer(
            self.scalor,
            self.cfg,
            Path(self._run_dir.name),
            dataset=[None],
            progress=False,
            tensorboard=False,
        )
        pyro.enable_validation(False)
        self.scalor.nets.train()

    def __call__(self, video: torch.Tensor) -> float:
        """Run one training step on ``video``; returns the loss (a float)."""
        from pyro_scalor.train.trainer import NonFiniteLossError

        tr = self.trainer
        try:
            loss, _ = tr.train_step(video, tr.step_kwargs(0, video), self.cfg.lr)
        except NonFiniteLossError as err:
            log.warning("a benchmark step: %s", err)
            return math.nan
        return loss


def time_steps(
    step: Callable[[int], object],
    warmup: int,
    steps: int,
    device: torch.device,
    start: int = 0,
) -> tuple[list[float], list[float]]:
    """Run ``step(i)`` for ``warmup`` then ``steps`` iterations, timing each one.

    Takes the step function (given the iteration index, counted from ``start``), the counts and
    the device (CUDA is synchronised before and after each step). Returns
    ``(warmup_times, times)`` in seconds.
    """

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    out: list[list[float]] = [[], []]
    for i in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        step(start + i)
        sync()
        out[i >= warmup].append(time.perf_counter() - t0)
        log.debug("step %d: %.3f s", start + i, out[i >= warmup][-1])
    return out[0], out[1]


def batch_fn(videos: torch.Tensor, batch_size: int) -> Callable[[int], torch.Tensor]:
    """Step ``i``'s batch: pool rows ``i*B .. i*B + B - 1`` (mod the pool size)."""
    n = videos.shape[0]

    def batch(i: int) -> torch.Tensor:
        idx = torch.arange(i * batch_size, (i + 1) * batch_size) % n
        return videos[idx.to(videos.device)]

    return batch


@dataclass
class _Case:
    """One input being benchmarked: its fresh model, batches, warm-up times and memory."""

    inp: BenchInput
    run: Callable[[int], float]
    frames: int
    warmup_times: list[float]
    memory: tuple[float, float, str]


def _prepare(
    config: ModelConfig,
    inp: BenchInput,
    device: torch.device,
    *,
    batch_size: int,
    warmup: int,
    seed: int,
    cuda_graph: bool = False,
) -> _Case:
    """Build a fresh model for ``inp`` and run its ``warmup`` steps, measuring peak memory."""
    videos = inp.videos.to(device)
    batch = batch_fn(videos, batch_size)
    train_step = TrainStep(config, device, seed=seed, cuda_graph=cuda_graph)

    def run(i: int) -> float:
        return train_step(batch(i))

    memory = PeakMemory(device)
    memory.start()
    warm, _ = time_steps(run, warmup, 0, device)
    return _Case(inp, run, int(videos.shape[1]), warm, memory.stop())


def _result_row(
    case: _Case,
    times: list[float],
    config: ModelConfig,
    device: torch.device,
    *,
    batch_size: int,
    config_name: str,
    cuda_graph: bool = False,
) -> dict:
    """The report's row for ``case`` timed at ``times`` (seconds); see :func:`bench_inputs`."""
    delta, peak, method = case.memory
    return {
        "device": device.type,
        "cuda_graph": cuda_graph,
        "device_name": device_name(device),
        "config": config_name,
        "input": case.inp.name,
        "source": case.inp.source,
        "objects_per_frame": round(case.inp.objects_per_frame, 3),
        "max_objects": config.max_objects,
        "batch_size": batch_size,
        "frames": case.frames,
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "step_time_median_s": statistics.median(times),
        "step_time_mean_s": statistics.fmean(times),
        "step_time_min_s": min(times),
        "step_time_max_s": max(times),
        "step_time_all_s": times,
        "warmup_time_all_s": case.warmup_times,
        "peak_memory_mb": round(delta, 1),
        "peak_memory_total_mb": round(peak, 1),
        "memory_method": method + ", over the warm-up steps",
        "load_average_after": load_average(),
    }


def bench_inputs(
    config: ModelConfig,
    inputs: list[BenchInput],
    device: torch.device,
    *,
    batch_size: int,
    warmup: int,
    steps: int,
    seed: int = 0,
    config_name: str = "",
    interleave: bool = True,
    progress: Callable[[list[dict]], None] | None = None,
    cuda_graph: bool = False,
) -> list[dict]:
    """Time ``steps`` training steps of a fresh model (same seed) on each input's videos.

    Each input first gets ``warmup`` untimed steps (>= 1), over which its peak memory is
    measured (see :class:`PeakMemory`). With ``interleave`` the timed steps go round-robin over
    the inputs (step k of every input, then step k + 1, ...), so a burst of load from other jobs
    hits all inputs alike and their ratios stay fair; otherwise each input runs all its steps in
    turn. Returns one row per input: device, device_name, config (``config_name``), input,
    source, objects_per_frame, max_objects, batch_size, frames, threads, the step-time median,
    mean, min, max, all raw times and warm-up times in seconds, peak_memory_mb (growth over the
    model-built baseline), peak_memory_total_mb, memory_method and load_average_after.
    ``progress``, if given, is called with the rows so far (timed steps so far) after every
    round, or after every input when not interleaving. ``cuda_graph`` (CUDA devices only)
    times graph replays: the warm-up is raised to cover the eager steps and the capture, and
    rows say ``cuda_graph``.
    """
    if warmup < 1:
        raise ValueError(f"need at least 1 warm-up step (memory is measured on them), got {warmup}")
    cuda_graph = cuda_graph and device.type == "cuda"
    if cuda_graph:
        warmup = max(warmup, GRAPH_WARMUP + 1)

    def announce(inp: BenchInput) -> None:
        log.info(
            "bench %s on %s (%.1f objects/frame, %d slots): %d warm-up + %d timed steps",
            inp.name,
            device.type,
            inp.objects_per_frame,
            config.max_objects,
            warmup,
            steps,
        )

    kw = dict(batch_size=batch_size, warmup=warmup, seed=seed, cuda_graph=cuda_graph)

    def rows_so_far() -> list[dict]:
        return [
            _result_row(
                c,
                t,
                config,
                device,
                batch_size=batch_size,
                config_name=config_name,
                cuda_graph=cuda_graph,
            )
            for c, t in zip(cases, times)
            if t
        ]

    cases: list[_Case] = []
    times: list[list[float]] = []
    if interleave:
        for inp in inputs:
            announce(inp)
            cases.append(_prepare(config, inp, device, **kw))
        times = [[] for _ in cases]
        for k in range(steps):
            for case, out in zip(cases, times):
                out.extend(time_steps(case.run, 0, 1, device, start=warmup + k)[1])
            log.info(
                "round %d/%d: %s",
                k + 1,
                steps,
                ", ".join(f"{c.inp.name} {t[-1]:.3f} s" for c, t in zip(cases, times)),
            )
            if progress is not None:
                progress(rows_so_far())
    else:
        for inp in inputs:
            announce(inp)
            case = _prepare(config, inp, device, **kw)
            times.append(time_steps(case.run, 0, steps, device, start=warmup)[1])
            cases.append(case)
            if progress is not None:
                progress(rows_so_far())
    rows = rows_so_far()
    for row in rows:
        log.info(
            "%s on %s: median %.3f s (min %.3f, max %.3f), peak memory +%.0f MiB",
            row["input"],
            row["device"],
            row["step_time_median_s"],
            row["step_time_min_s"],
            row["step_time_max_s"],
            row["peak_memory_mb"],
        )
    return rows
