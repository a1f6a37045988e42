"""Training-step time and peak memory of SCALOR: the benchmark behind ``pyro-scalor bench``.

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

Examples (from the repository root; the second runs without the console script)::

    pyro-scalor bench --json outputs/bench_cpu.json
    python -m benchmarks --quick --model-preset tiny
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from pyro_scalor.cli.common import add_cache_dir_argument, positive_int
from pyro_scalor.io import save_json
from pyro_scalor.model.config import MODEL_PRESETS, get_model_config

from .inputs import DEFAULT_FIXED_COUNTS, DEFAULT_PRESETS, load_inputs
from .machine import load_average, machine_info, resolve_devices
from .profiling import profile_step
from .report import TARGETS, format_table, summarise
from .timing import bench_inputs

log = logging.getLogger(__name__)


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
    report["machine"]["load_average_end"] = load_average()
    report["complete"] = True
    summarise(report)
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the benchmark's options to ``p`` (the ``pyro-scalor bench`` parser)."""
    p.add_argument(
        "--model-preset", default="reference", choices=list(MODEL_PRESETS), help="model preset"
    )
    p.add_argument("--max-objects", type=positive_int, help="override the slot count K")
    p.add_argument(
        "--device", default="auto", help="auto (CPU, plus CUDA if available), cpu or cuda"
    )
    p.add_argument("--threads", type=positive_int, default=2, help="CPU threads")
    p.add_argument("--batch-size", type=positive_int, default=4, help="videos per step")
    p.add_argument("--frames", type=positive_int, default=8, help="frames per video (T)")
    p.add_argument(
        "--warmup",
        type=positive_int,
        default=None,
        help="untimed steps (default: 3; 1 with --quick)",
    )
    p.add_argument(
        "--steps", type=positive_int, default=None, help="timed steps (default: 10; 2 with --quick)"
    )
    p.add_argument("--quick", action="store_true", help="1 warm-up and 2 timed steps (tests)")
    p.add_argument(
        "--presets", nargs="*", default=list(DEFAULT_PRESETS), help="data presets (test split)"
    )
    p.add_argument(
        "--fixed-counts",
        nargs="*",
        type=positive_int,
        default=list(DEFAULT_FIXED_COUNTS),
        help="objects per frame of the synthetic inputs",
    )
    p.add_argument("--num-sequences", type=positive_int, default=8, help="videos per input")
    add_cache_dir_argument(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the models and synthetic videos")
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


def run(args: argparse.Namespace) -> int:
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
    """Write ``report`` as indented JSON to ``path`` atomically, keys in the report's order."""
    return save_json(report, path, sort_keys=False)
