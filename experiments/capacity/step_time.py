"""Median training-step time of a run preset's model at several slot capacities K.

    python experiments/capacity/step_time.py              # cpu-default as it is
    python experiments/capacity/step_time.py --set propagation=gated merge=tracks \
        rejection_rule=mask                                 # with the paper's rules

``--set`` changes ModelConfig fields (values parsed as Python literals, else kept as strings).
``--checkpoint RUN`` times steps of a trained run's model and weights at each K instead of a
fresh one (with the temperature and discovery prior of the step it was saved at): how many slots
hold objects, and so what decoding only present slots saves, depends on what was learned.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import statistics
import tempfile
import time

import torch

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.train.checkpoint import load_checkpoint
from pyro_scalor.train.config import get_run_preset
from pyro_scalor.train.trainer import Trainer


def literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu-default")
    p.add_argument("--ks", type=int, nargs="+", default=[12, 32, 64, 128, 256])
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", nargs="*", default=[], help="ModelConfig field=value")
    p.add_argument("--checkpoint", help="a trained run (folder or checkpoint file) to time")
    p.add_argument("--seq-len", type=int, help="frames per training window (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="sequences per step (default: the preset's)")
    p.add_argument("--json", help="write the rows here")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    preset = get_run_preset(a.preset)
    if a.seq_len:
        preset = dataclasses.replace(preset, train=preset.train.replace(seq_len=a.seq_len))
    if a.batch_size:
        preset = dataclasses.replace(preset, train=preset.train.replace(batch_size=a.batch_size))
    changes = {k: literal(v) for k, v in (s.split("=", 1) for s in a.set)}
    data = load_dataset(preset.train.data_preset, "train", num_sequences=64)
    ckpt = load_checkpoint(a.checkpoint) if a.checkpoint else None
    base = preset.model if ckpt is None else ckpt["model_config"]
    offset = 0 if ckpt is None else int(ckpt["step"])
    rows = []
    for k in a.ks:
        model = preset.train.model_config(base.replace(max_objects=k, **changes))
        scalor = Scalor(model, seed=0)
        if ckpt is not None:
            scalor.nets.load_state_dict(ckpt["nets"])
        times = []
        with tempfile.TemporaryDirectory() as run_dir:
            trainer = Trainer(
                scalor, preset.train, run_dir, dataset=data, progress=False, tensorboard=False
            )
            for step in range(a.warmup + a.steps):
                video = trainer.batch(step)
                kwargs = trainer.step_kwargs(offset + step, video)
                start = time.perf_counter()
                trainer.train_step(video, kwargs, preset.train.lr)
                if step >= a.warmup:
                    times.append(time.perf_counter() - start)
            trainer.close()
        row = {"K": k, "median_s": statistics.median(times), "mean_s": statistics.mean(times)}
        rows.append(row)
        print(f"K={k:4d} median {row['median_s']:.3f} s mean {row['mean_s']:.3f} s", flush=True)
    if a.json:
        report = {
            "preset": a.preset,
            "changes": changes,
            "threads": a.threads,
            "batch_size": preset.train.batch_size,
            "seq_len": preset.train.seq_len,
            "rows": rows,
        }
        if ckpt is not None:
            report.update(checkpoint=str(a.checkpoint), at_step=offset)
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
