"""Training-step time and peak memory against visible objects per frame, one run preset per
density (each at the capacity and grid that density's preset uses), with a plot.

    python experiments/tracking_density/scaling.py --json scaling.json --plot scaling.png

Each preset trains a few steps on its own data (its training batch, 4-frame windows): median step
time after warm-up, and the peak memory growth of those steps (resident set on CPU, the
allocator's peak on CUDA; :class:`benchmarks.PeakMemory`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.memory import PeakMemory  # noqa: E402
from pyro_scalor.api import Scalor  # noqa: E402
from pyro_scalor.data import load_dataset  # noqa: E402
from pyro_scalor.data.presets import PAPER_VISIBLE_AVERAGE  # noqa: E402
from pyro_scalor.train.config import get_run_preset  # noqa: E402
from pyro_scalor.train.trainer import Trainer  # noqa: E402

PRESETS = ("cpu-capacity", "cpu-md", "cpu-hd", "cpu-vhd")


def measure(name: str, device: torch.device, warmup: int, steps: int) -> dict:
    """Median step time and peak memory growth of run preset ``name`` on ``device``."""
    preset = get_run_preset(name)
    model = preset.train.model_config(preset.model)
    data = load_dataset(preset.train.data_preset, "train", num_sequences=64)
    scalor = Scalor(model, seed=0, device=device)
    times = []
    memory = PeakMemory(device)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(
            scalor, preset.train, run_dir, dataset=data, progress=False, tensorboard=False
        )
        for step in range(warmup + steps):
            video = trainer.batch(step)
            kwargs = trainer.step_kwargs(step, video)
            if step == warmup:
                memory.start()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            trainer.train_step(video, kwargs, preset.train.lr)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if step >= warmup:
                times.append(time.perf_counter() - start)
        delta_mb, peak_mb, method = memory.stop()
        trainer.close()
    return {
        "preset": name,
        "data": preset.train.data_preset,
        "visible_per_frame": PAPER_VISIBLE_AVERAGE[preset.train.data_preset],
        "max_objects": model.max_objects,
        "grid_size": model.grid_size,
        "median_s": statistics.median(times),
        "peak_growth_mb": delta_mb,
        "peak_mb": peak_mb,
        "memory_method": method,
    }


def plot(rows: list[dict], path: Path, device: str) -> None:
    """Step time and peak memory against visible objects per frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["visible_per_frame"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=100)
    ax.plot(x, [r["median_s"] for r in rows], "o-", color="tab:blue")
    ax.set_xlabel("visible objects per frame")
    ax.set_ylabel("training step (s)", color="tab:blue")
    for r in rows:
        ax.annotate(
            f"{r['data'].split('-')[-1].upper()}\nK={r['max_objects']}, grid {r['grid_size']}",
            (r["visible_per_frame"], r["median_s"]),
            textcoords="offset points",
            xytext=(4, 6),
            fontsize=7,
        )
    ax2 = ax.twinx()
    ax2.plot(x, [r["peak_growth_mb"] for r in rows], "s--", color="tab:red")
    ax2.set_ylabel("peak memory growth (MiB)", color="tab:red")
    ax.set_ylim(bottom=0)
    ax2.set_ylim(bottom=0)
    ax.set_title(f"one training step (batch 4, 4 frames) on {device}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=list(PRESETS))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--json", type=Path)
    p.add_argument("--plot", type=Path)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    rows = []
    for name in a.presets:
        row = measure(name, device, a.warmup, a.steps)
        rows.append(row)
        print(
            f"{name:14s} {row['data']:14s} K={row['max_objects']:4d} grid {row['grid_size']:2d} "
            f"step {row['median_s']:.3f} s, peak +{row['peak_growth_mb']:.0f} MiB",
            flush=True,
        )
    label = f"{device.type} ({a.threads} threads)" if device.type == "cpu" else str(device)
    if a.json:
        a.json.write_text(json.dumps({"device": label, "rows": rows}, indent=1))
    if a.plot:
        plot(rows, a.plot, label)


if __name__ == "__main__":
    main()
