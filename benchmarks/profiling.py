"""A one-step profile of SCALOR training: torch ops (torch.profiler) and Python (cProfile)."""

from __future__ import annotations

import cProfile
import io
import pstats
import time

import torch

from pyro_scalor.model.config import ModelConfig

from .inputs import BenchInput
from .timing import TrainStep, batch_fn


def profile_step(
    config: ModelConfig,
    inp: BenchInput,
    device: torch.device,
    *,
    batch_size: int,
    warmup: int = 1,
    top: int = 15,
    seed: int = 0,
) -> str:
    """Profile one training step (after ``warmup`` steps) of a fresh model on ``inp``.

    Returns a text report: the ``top`` torch ops by self CPU time, by total CPU time and by self
    CPU time per input shape (``torch.profiler``) and the ``top`` Python functions by cumulative
    and by internal time (``cProfile``, a second step). Profiler overhead makes these steps
    slower than timed ones.
    """
    from torch.profiler import ProfilerActivity, profile

    batch = batch_fn(inp.videos.to(device), batch_size)
    train_step = TrainStep(config, device, seed=seed)
    for i in range(warmup):
        train_step(batch(i))
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities, record_shapes=True) as prof:
        start = time.perf_counter()
        train_step(batch(warmup))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - start
    events = prof.key_averages()
    ops_s = sum(e.self_cpu_time_total for e in events) / 1e6
    parts = [
        f"# profile of one training step: {device.type}, input {inp.name}, "
        f"batch {batch_size}, T {inp.videos.shape[1]}, {torch.get_num_threads()} threads\n",
        f"wall time of the profiled step: {wall:.3f} s; self CPU time of all torch ops: "
        f"{ops_s:.3f} s ({100 * ops_s / wall:.0f}%); the rest is Python, Pyro and "
        f"profiler overhead\n",
    ]
    for key in ("self_cpu_time_total", "cpu_time_total"):
        parts.append(f"## torch ops by {key}\n")
        parts.append(events.table(sort_by=key, row_limit=top, max_name_column_width=50))
    parts.append("## torch ops by self_cpu_time_total, grouped by input shapes\n")
    parts.append(
        prof.key_averages(group_by_input_shape=True).table(
            sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=30
        )
    )
    if device.type == "cuda":
        parts.append("## torch ops by self_cuda_time_total\n")
        parts.append(
            events.table(sort_by="self_cuda_time_total", row_limit=top, max_name_column_width=50)
        )
    profiler = cProfile.Profile()
    profiler.enable()
    train_step(batch(warmup + 1))
    profiler.disable()
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats(key).print_stats(top)
        parts.append(f"## python functions by {key} (cProfile)\n{buf.getvalue()}")
    return "\n".join(parts)
