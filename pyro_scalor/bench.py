"""``pyro-scalor bench``: training-step time and peak memory of SCALOR.

One timed step is exactly one training step of :class:`pyro_scalor.train.trainer.Trainer`: the
objective's ``loss_and_grads`` (model and guide forward, backward), gradient-norm clipping and an
RMSprop step, with the step-0 schedules of the default :class:`TrainConfig` (temperature 1.0,
discovery presence prior 0.1) and its discovery-dropout mask. Warm-up steps are not counted;
the report has the median, mean, min, max and every raw time. By default the timed steps go
round-robin over the inputs, so load from other jobs on a shared machine hits them alike.

Inputs: batches from the test split of data presets (default dsprites-ld, about 9 visible objects
per frame, and dsprites-vhd, about 99), and synthetic videos with exactly N objects in every frame
(default N = 10 and 60), which compare runs fairly across data versions. The model has a fixed
number of object slots (``max_objects``), so its cost should not grow with the object count;
``ratios`` in the report says whether it does.

Peak memory, over each input's warm-up steps: on CPU the growth of the resident set size over
the model-built baseline (the peak is reset per input through ``/proc/self/clear_refs`` on
Linux; elsewhere ``ru_maxrss``, a lifetime peak); on CUDA ``torch.cuda.max_memory_allocated``
over the memory allocated before.

Example::

    pyro-scalor bench --json experiments/bench/results_cpu.json
"""

from __future__ import annotations

import cProfile
import ctypes
import gc
import hashlib
import io
import json
import logging
import math
import os
import platform
import pstats
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyro
import torch

from pyro_scalor.model.config import MODEL_PRESETS, ModelConfig, get_model_config
from pyro_scalor.train.cli import _positive_int
from pyro_scalor.train.graphed import GRAPH_WARMUP

log = logging.getLogger(__name__)

#: The project's targets (see experiments/bench/README.md).
TARGETS = {"cpu_reference_median_s": 1.2, "vhd_over_ld_max": 1.2}
DEFAULT_PRESETS = ("dsprites-ld", "dsprites-vhd")
DEFAULT_FIXED_COUNTS = (10, 60)
#: What the reference target is stated for (the issue's reference configuration).
REFERENCE_SETTING = {"model_preset": "reference", "batch_size": 4, "frames": 8, "threads": 2}


# ---------------------------------------------------------------------------------------------
# inputs


@dataclass
class BenchInput:
    """A pool of videos to draw training batches from.

    ``name`` labels the input in the report (a preset name or ``fixed-N``); ``videos`` is float32
    (N, T, C, H, W) in [0, 1]; ``objects_per_frame`` the mean number of visible objects per
    frame over the pool; ``source`` says where the videos came from.
    """

    name: str
    videos: torch.Tensor
    objects_per_frame: float
    source: str


def fixed_count_video(
    num_objects: int,
    frames: int,
    *,
    batch_size: int = 1,
    image_size: int = 64,
    channels: int = 3,
    seed: int = 0,
    min_size: int = 5,
    max_size: int = 8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Videos with exactly ``num_objects`` separate coloured squares in every frame.

    The frame is split into a g x g grid of cells (g = ceil(sqrt(num_objects))); each object gets
    its own cell, a side of ``min_size``..``max_size`` pixels (at most the cell side minus one),
    a random colour and a constant velocity of 1-2 pixels per frame per axis, reflecting off its
    cell's walls. Objects therefore never touch or leave the view, so every frame shows exactly
    ``num_objects`` objects on black. Deterministic for a given ``seed``.

    Returns ``video`` float32 (batch_size, frames, channels, image_size, image_size) in [0, 1]
    and ``boxes`` int64 (batch_size, frames, num_objects, 4) in pixels
    ``(x_min, y_min, x_max, y_max)``, max exclusive. Raises ValueError when the objects cannot
    fit (cells smaller than ``min_size + 1`` pixels).
    """
    if num_objects < 1 or frames < 1 or batch_size < 1:
        raise ValueError("num_objects, frames and batch_size must be >= 1")
    if not 1 <= min_size <= max_size:
        raise ValueError(f"need 1 <= min_size <= max_size, got {min_size}, {max_size}")
    grid = math.ceil(math.sqrt(num_objects))
    cell = image_size // grid
    if cell < min_size + 1:
        raise ValueError(
            f"{num_objects} objects of >= {min_size} px do not fit in a {image_size}x{image_size} "
            f"frame ({grid}x{grid} cells of {cell} px); use fewer or smaller objects"
        )
    side_max = min(max_size, cell - 1)
    rng = np.random.default_rng(seed)
    video = np.zeros((batch_size, frames, channels, image_size, image_size), np.float32)
    boxes = np.zeros((batch_size, frames, num_objects, 4), np.int64)
    steps = np.arange(frames)
    for b in range(batch_size):
        cells = rng.choice(grid * grid, size=num_objects, replace=False)
        for k, c in enumerate(cells):
            side = int(rng.integers(min_size, side_max + 1))
            room = cell - 1 - side  # free positions inside the cell, keeping a 1 px gap
            colour = rng.uniform(0.3, 1.0, size=3).astype(np.float32)
            if channels == 1:
                colour = colour.mean(keepdims=True)
            origin = np.array([c % grid, c // grid]) * cell
            start = rng.integers(0, room + 1, size=2)
            velocity = rng.choice([-2, -1, 1, 2], size=2)
            for axis in range(2):
                pos = _reflect(start[axis] + velocity[axis] * steps, room)
                boxes[b, :, k, axis] = origin[axis] + pos
                boxes[b, :, k, axis + 2] = origin[axis] + pos + side
            for t in range(frames):
                x0, y0, x1, y1 = boxes[b, t, k]
                video[b, t, :, y0:y1, x0:x1] = colour[:, None, None]
    return torch.from_numpy(video), torch.from_numpy(boxes)


def _reflect(pos: np.ndarray, room: int) -> np.ndarray:
    """Fold positions ``pos`` (int array) into [0, room] by reflecting off both ends."""
    if room == 0:
        return np.zeros_like(pos)
    period = 2 * room
    p = np.mod(pos, period)
    return np.where(p > room, period - p, p)


def load_inputs(
    config: ModelConfig,
    *,
    presets: tuple[str, ...] | list[str] = DEFAULT_PRESETS,
    fixed_counts: tuple[int, ...] | list[int] = DEFAULT_FIXED_COUNTS,
    frames: int = 8,
    num_sequences: int = 8,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> list[BenchInput]:
    """The benchmark's inputs: ``num_sequences`` videos of ``frames`` frames each.

    Takes the model ``config`` (image size and channels), data ``presets`` (their test split,
    generated and cached under ``cache_dir`` on first use) and ``fixed_counts`` (synthetic videos
    from :func:`fixed_count_video`). Returns one :class:`BenchInput` per preset, then per count.
    Raises ValueError when a preset's frames or image size do not match.
    """
    from pyro_scalor.data import load_dataset

    inputs = []
    for preset in presets:
        data = load_dataset(preset, "test", num_sequences=num_sequences, cache_dir=cache_dir)
        dc = data.config
        if dc.seq_len < frames:
            raise ValueError(f"preset {preset!r} has {dc.seq_len} frames; --frames is {frames}")
        if dc.image_size != config.image_size:
            raise ValueError(
                f"preset {preset!r} has {dc.image_size}px frames; the model expects "
                f"{config.image_size}px"
            )
        videos = data.videos()[:, :frames]
        if config.channels == 1:
            videos = videos.mean(2, keepdim=True)
        visible = np.asarray(data.arrays["visible"])[:, :frames]
        per_frame = float(visible.sum(-1).mean())
        inputs.append(BenchInput(preset, videos, per_frame, f"{preset} test split"))
    for n in fixed_counts:
        videos, _ = fixed_count_video(
            n,
            frames,
            batch_size=num_sequences,
            image_size=config.image_size,
            channels=config.channels,
            seed=seed + n,
        )
        inputs.append(BenchInput(f"fixed-{n}", videos, float(n), f"synthetic, seed {seed + n}"))
    return inputs


# ---------------------------------------------------------------------------------------------
# memory


def _proc_status_mb(field: str) -> float | None:
    """``field`` (e.g. 'VmRSS', 'VmHWM') of /proc/self/status in MiB, or None if unreadable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _ru_maxrss_mb() -> float:
    """Lifetime peak RSS of this process in MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0


def _release_memory() -> None:
    """Collect garbage and return freed heap memory to the OS (glibc ``malloc_trim``)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory of the code run between :meth:`start` and :meth:`stop` on ``device``.

    :meth:`stop` returns ``(delta_mb, peak_mb, method)``: the growth over the memory in use at
    :meth:`start`, the absolute peak, and how it was measured.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.base = 0.0
        self.method = ""

    def start(self) -> None:
        """Reset the peak counter and record the baseline."""
        _release_memory()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device) / 2**20
            self.method = "torch.cuda.max_memory_allocated"
            return
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM (the peak RSS) to the current RSS
            self.base = _proc_status_mb("VmRSS") or 0.0
            self.method = "VmHWM after /proc/self/clear_refs reset"
        except OSError:
            self.base = _proc_status_mb("VmRSS") or _ru_maxrss_mb()
            self.method = "ru_maxrss (lifetime peak)"

    def stop(self) -> tuple[float, float, str]:
        """Return ``(delta_mb, peak_mb, method)`` since :meth:`start`."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        elif self.method.startswith("VmHWM"):
            peak = _proc_status_mb("VmHWM") or _ru_maxrss_mb()
        else:
            peak = _ru_maxrss_mb()
        return max(peak - self.base, 0.0), peak, self.method


# ---------------------------------------------------------------------------------------------
# timing


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
        # run_dir is never written: the benchmark neither saves nor logs to tensorboard
        self.trainer = Trainer(
            self.scalor,
            self.cfg,
            Path(os.devnull),
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


def _batch_fn(videos: torch.Tensor, batch_size: int) -> Callable[[int], torch.Tensor]:
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
    batch = _batch_fn(videos, batch_size)
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
        "device_name": _device_name(device),
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
        "load_average_after": _load_average(),
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


# ---------------------------------------------------------------------------------------------
# profiling


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

    batch = _batch_fn(inp.videos.to(device), batch_size)
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


# ---------------------------------------------------------------------------------------------
# the benchmark


def resolve_devices(name: str) -> list[torch.device]:
    """'auto' (CPU, plus CUDA when available), 'cpu' or 'cuda[:N]' to a list of devices."""
    if name == "auto":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {name!r}; use auto, cpu or cuda")
    return [dev]


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other jobs make timings noisy), or None."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info(devices: list[torch.device]) -> dict:
    """Facts about this machine and software that bear on the timings."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "cuda_available": torch.cuda.is_available(),
        "devices": [{"type": d.type, "name": _device_name(d)} for d in devices],
        "load_average_start": _load_average(),
        "git": _git_state(),
    }


def _git_state() -> dict:
    """The code being timed: a digest of the package's .py files, and the git commit and dirty
    flag of its tree when it is a git checkout (runs with equal digests ran the same code)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent

    def git(*cmd: str) -> str:
        out = subprocess.run(
            ["git", *cmd], cwd=root, capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip()

    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.rglob("*.py")):
        digest.update(path.read_bytes())
    state: dict = {"package_sha256": digest.hexdigest()[:16]}
    try:
        state.update(commit=git("rev-parse", "HEAD"), dirty=bool(git("status", "--porcelain")))
    except (OSError, subprocess.SubprocessError):
        pass
    return state


def _ratio(rows: list[dict], num: str, den: str) -> float | None:
    by_input = {r["input"]: r["step_time_median_s"] for r in rows}
    if num in by_input and den in by_input and by_input[den] > 0:
        return by_input[num] / by_input[den]
    return None


def summarise(report: dict) -> None:
    """Add ``ratios`` (per device) and ``checks`` (against ``targets``) to ``report`` in place.

    Ratios: ``vhd_over_ld`` (dsprites-vhd over dsprites-ld median) and ``fixedN_over_fixedM``
    (largest over smallest fixed count). Checks use the CPU dsprites-ld median for the reference
    target, which applies only to the reference setting (``REFERENCE_SETTING``).
    """
    ratios: dict[str, dict] = {}
    for device in dict.fromkeys(r["device"] for r in report["results"]):
        rows = [r for r in report["results"] if r["device"] == device]
        entry = {"vhd_over_ld": _ratio(rows, "dsprites-vhd", "dsprites-ld")}
        fixed = sorted(
            int(r["input"].split("-", 1)[1]) for r in rows if r["input"].startswith("fixed-")
        )
        if len(fixed) >= 2:
            lo, hi = fixed[0], fixed[-1]
            entry[f"fixed{hi}_over_fixed{lo}"] = _ratio(rows, f"fixed-{hi}", f"fixed-{lo}")
        ratios[device] = entry
    report["ratios"] = ratios
    cpu_rows = {r["input"]: r for r in report["results"] if r["device"] == "cpu"}
    setting = report["config"]["setting"]
    applies = all(setting.get(k) == v for k, v in REFERENCE_SETTING.items()) and (
        report["config"]["model"] == asdict(MODEL_PRESETS["reference"])
    )
    ld = cpu_rows.get("dsprites-ld")
    cpu_median = ld["step_time_median_s"] if ld else None
    vhd_ld = ratios.get("cpu", {}).get("vhd_over_ld")
    report["checks"] = {
        "reference_setting": applies,
        "cpu_reference_median_s": cpu_median,
        "cpu_reference_ok": (
            cpu_median <= TARGETS["cpu_reference_median_s"]
            if applies and cpu_median is not None
            else None
        ),
        "cpu_vhd_over_ld": vhd_ld,
        "cpu_vhd_over_ld_ok": vhd_ld <= TARGETS["vhd_over_ld_max"] if vhd_ld else None,
    }


def run_benchmark(
    *,
    model_preset: str = "reference",
    max_objects: int | None = None,
    devices: list[torch.device] | None = None,
    threads: int | None = 2,
    batch_size: int = 4,
    frames: int = 8,
    warmup: int = 3,
    steps: int = 10,
    presets: tuple[str, ...] | list[str] = DEFAULT_PRESETS,
    fixed_counts: tuple[int, ...] | list[int] = DEFAULT_FIXED_COUNTS,
    num_sequences: int = 8,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    profile_path: str | Path | None = None,
    interleave: bool = True,
    on_progress: Callable[[dict], None] | None = None,
    cuda_graph: bool = False,
) -> dict:
    """Run the whole benchmark and return the report (see the module docstring).

    Takes the model preset (with an optional ``max_objects`` override), the devices (default
    CPU), CPU ``threads`` (None leaves torch's setting), batch size, frames per video, warm-up
    and timed steps per case, the data presets and fixed object counts, the pool size per input,
    the dataset cache directory, the seed, optionally a path to write a one-step profile of
    the first input on the first device, and whether to ``interleave`` the inputs' timed steps
    (see :func:`bench_inputs`), and whether CUDA devices replay the step as a CUDA graph
    (``cuda_graph``). ``on_progress``, if given, is called with a partial report
    (``complete`` False) after every round, so a long run that is killed leaves its results so
    far. Returns a dict with ``machine``, ``config``,
    ``results`` (one row per device and input, from :func:`bench_inputs`), ``ratios``,
    ``targets`` and ``checks``.
    """
    if min(warmup, steps, batch_size, frames, num_sequences) < 1:
        raise ValueError("need warmup, steps, batch_size, frames and num_sequences >= 1")
    devices = devices or [torch.device("cpu")]
    overrides = {} if max_objects is None else {"max_objects": max_objects}
    config = get_model_config(model_preset, **overrides)
    if threads:
        torch.set_num_threads(threads)
    num_sequences = max(num_sequences, batch_size)
    report = {
        "machine": machine_info(devices),
        "config": {
            "model_preset": model_preset,
            "model": asdict(config),
            "setting": {
                "model_preset": model_preset,
                "max_objects": config.max_objects,
                "batch_size": batch_size,
                "frames": frames,
                "threads": torch.get_num_threads(),
                "warmup_steps": warmup,
                "timed_steps": steps,
                "num_sequences": num_sequences,
                "seed": seed,
                "order": "interleaved" if interleave else "sequential",
                "cuda_graph": cuda_graph,
                "train_step": "TraceMeanField_ELBO loss_and_grads + clip_grad_norm_(1.0) + "
                "RMSprop step; temperature 1.0, disc_pres_prior 0.1, discovery dropout 0.5",
            },
        },
        "results": [],
        "targets": dict(TARGETS),
    }
    inputs = load_inputs(
        config,
        presets=presets,
        fixed_counts=fixed_counts,
        frames=frames,
        num_sequences=num_sequences,
        cache_dir=cache_dir,
        seed=seed,
    )
    over = [i.name for i in inputs if i.objects_per_frame > config.max_objects]
    if over:
        log.warning(
            "%s: more objects per frame than the model's %d slots (max_objects); it cannot "
            "represent them all, and its cost is that of %d slots",
            ", ".join(over),
            config.max_objects,
            config.max_objects,
        )
    name = model_preset if max_objects is None else f"{model_preset}+max_objects={max_objects}"
    for device in devices:
        done = list(report["results"])

        def partial(rows: list[dict], done=done) -> None:
            if on_progress is not None:
                snapshot = {**report, "results": done + rows, "complete": False}
                summarise(snapshot)
                on_progress(snapshot)

        report["results"] = done + bench_inputs(
            config,
            inputs,
            device,
            batch_size=batch_size,
            warmup=warmup,
            steps=steps,
            seed=seed,
            config_name=name,
            interleave=interleave,
            progress=partial,
            cuda_graph=cuda_graph,
        )
    if profile_path is not None and inputs:
        log.info("profiling one step of %s on %s", inputs[0].name, devices[0].type)
        text = profile_step(config, inputs[0], devices[0], batch_size=batch_size, seed=seed)
        Path(profile_path).parent.mkdir(parents=True, exist_ok=True)
        Path(profile_path).write_text(text)
        report["profile"] = str(profile_path)
    report["machine"]["load_average_end"] = _load_average()
    report["complete"] = True
    summarise(report)
    return report


def format_table(report: dict) -> str:
    """The report as a plain-text table: one line per result, then ratios and target checks."""
    head = (
        f"{'device':<6} {'input':<13} {'obj/frame':>9} {'slots':>5} {'median s':>9} "
        f"{'mean s':>8} {'min s':>7} {'max s':>7} {'peak MiB':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in report["results"]:
        lines.append(
            f"{r['device']:<6} {r['input']:<13} {r['objects_per_frame']:>9.1f} "
            f"{r['max_objects']:>5d} {r['step_time_median_s']:>9.3f} "
            f"{r['step_time_mean_s']:>8.3f} {r['step_time_min_s']:>7.3f} "
            f"{r['step_time_max_s']:>7.3f} {r['peak_memory_mb']:>9.1f}"
        )
    s = report["config"]["setting"]
    lines.append(
        f"config {s['model_preset']} (max_objects {s['max_objects']}), batch {s['batch_size']}, "
        f"T {s['frames']}, {s['threads']} CPU threads, {s['warmup_steps']} warm-up + "
        f"{s['timed_steps']} timed steps ({s['order']})"
    )
    for device, ratios in report["ratios"].items():
        text = ", ".join(f"{k} {v:.2f}" for k, v in ratios.items() if v is not None)
        lines.append(f"ratios {device}: {text or 'n/a'}")
    c, t = report["checks"], report["targets"]

    def verdict(ok) -> str:
        return "n/a" if ok is None else "PASS" if ok else "FAIL"

    if c["cpu_reference_median_s"] is not None:
        note = "" if c["reference_setting"] else " (not the reference setting: not checked)"
        lines.append(
            f"target CPU dsprites-ld median <= {t['cpu_reference_median_s']} s: "
            f"{c['cpu_reference_median_s']:.3f} s {verdict(c['cpu_reference_ok'])}{note}"
        )
    if c["cpu_vhd_over_ld"] is not None:
        lines.append(
            f"target CPU vhd/ld <= {t['vhd_over_ld_max']}: {c['cpu_vhd_over_ld']:.2f} "
            f"{verdict(c['cpu_vhd_over_ld_ok'])}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# command line


def register(sub) -> None:
    """Add the ``bench`` sub-command to ``sub`` (an argparse sub-parsers object)."""
    p = sub.add_parser(
        "bench",
        help="training-step time and peak memory (reference config, ld vs vhd, fixed counts)",
        description="Median training-step time and peak memory of SCALOR on real and "
        "fixed-object-count videos; see experiments/bench/README.md.",
    )
    p.add_argument("--model-preset", default="reference", choices=list(MODEL_PRESETS))
    p.add_argument("--max-objects", type=_positive_int, help="override the slot count K")
    p.add_argument("--device", default="auto", help="auto (CPU, plus CUDA if available), cpu, cuda")
    p.add_argument("--threads", type=_positive_int, default=2, help="CPU threads (default 2)")
    p.add_argument("--batch-size", type=_positive_int, default=4)
    p.add_argument("--frames", type=_positive_int, default=8, help="frames per video (T)")
    p.add_argument("--warmup", type=_positive_int, default=None, help="untimed steps (default 3)")
    p.add_argument("--steps", type=_positive_int, default=None, help="timed steps (default 10)")
    p.add_argument("--quick", action="store_true", help="1 warm-up and 2 timed steps (tests)")
    p.add_argument(
        "--presets", nargs="*", default=list(DEFAULT_PRESETS), help="data presets (test split)"
    )
    p.add_argument(
        "--fixed-counts",
        nargs="*",
        type=_positive_int,
        default=list(DEFAULT_FIXED_COUNTS),
        help="objects per frame of the synthetic inputs",
    )
    p.add_argument("--num-sequences", type=_positive_int, default=8, help="videos per input")
    p.add_argument("--cache-dir", type=Path, help="dataset cache directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("--profile", type=Path, help="write a one-step profile (text) here")
    p.add_argument(
        "--sequential",
        action="store_true",
        help="time each input's steps in turn (default: round-robin over the inputs)",
    )
    p.add_argument(
        "--cuda-graph",
        action="store_true",
        help="on CUDA devices, replay the training step as a CUDA graph (TrainConfig.cuda_graph)",
    )
    p.set_defaults(func=run_bench)


def run_bench(args) -> int:
    """Run the benchmark from parsed ``args``; prints the table, writes JSON; returns 0."""
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    steps = args.steps if args.steps is not None else (2 if args.quick else 10)
    if not args.presets and not args.fixed_counts:
        raise ValueError("nothing to benchmark: give --presets and/or --fixed-counts")
    report = run_benchmark(
        model_preset=args.model_preset,
        max_objects=args.max_objects,
        devices=resolve_devices(args.device),
        threads=args.threads,
        batch_size=args.batch_size,
        frames=args.frames,
        warmup=warmup,
        steps=steps,
        presets=args.presets,
        fixed_counts=args.fixed_counts,
        num_sequences=args.num_sequences,
        cache_dir=args.cache_dir,
        seed=args.seed,
        profile_path=args.profile,
        interleave=not args.sequential,
        cuda_graph=args.cuda_graph,
        on_progress=(lambda partial: save_report(partial, args.json)) if args.json else None,
    )
    if args.json:
        save_report(report, args.json)
        log.info("wrote %s", args.json)
    print(format_table(report))
    return 0


def save_report(report: dict, path: str | Path) -> Path:
    """Write ``report`` as indented JSON to ``path`` atomically (temporary file, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(path)
    return path
