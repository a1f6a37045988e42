"""Train a run preset with changes to its model config, then score it on the test split.

    python experiments/capacity/train_variant.py --preset cpu-capacity --set max_objects=12 \
        --run-dir runs/capacity-k12 --json experiments/capacity/k12.json

A run folder that already holds a checkpoint is resumed (an interrupted run continues);
``--threads 1`` lets two variants train side by side on a 2-core machine.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from step_time import literal

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.eval.tracking import evaluate
from pyro_scalor.io import save_json
from pyro_scalor.train.config import get_run_preset
from pyro_scalor.train.schedules import Schedule
from pyro_scalor.train.trainer import Trainer


def train_value(text: str):
    """A TrainConfig value: a literal, or a schedule written ``start,end,steps,kind``."""
    parts = text.split(",")
    if len(parts) == 4:
        return Schedule(float(parts[0]), float(parts[1]), int(parts[2]), parts[3])
    return literal(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu-capacity")
    p.add_argument("--set", nargs="*", default=[], help="ModelConfig field=value")
    p.add_argument(
        "--train-set",
        nargs="*",
        default=[],
        help="TrainConfig field=value; a schedule as name=start,end,steps,kind",
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--eval-sequences", type=int, default=None, help="default: the whole split")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    preset = get_run_preset(a.preset)
    changes = {k: literal(v) for k, v in (s.split("=", 1) for s in a.set)}
    train_changes = {k: train_value(v) for k, v in (s.split("=", 1) for s in a.train_set)}
    train = preset.train.replace(
        **train_changes,
        **{k: v for k, v in (("seed", a.seed), ("threads", a.threads)) if v is not None},
    )
    model = train.model_config(preset.model.replace(**changes))
    if a.threads:
        torch.set_num_threads(a.threads)
    data = load_dataset(train.data_preset, "train", num_sequences=train.num_train)
    resume = (a.run_dir / "checkpoint.pt").exists()
    scalor = Scalor(model, seed=train.seed, tracking=preset.tracking)
    Trainer(scalor, train, a.run_dir, dataset=data, resume=resume, progress=False).fit()
    scalor = Scalor.from_checkpoint(a.run_dir)
    metrics, _ = evaluate(scalor, train.data_preset, "test", num_sequences=a.eval_sequences,
                          progress=False)  # fmt: skip
    metrics.update(
        preset=a.preset,
        changes=changes,
        train_changes=a.train_set,
        seed=train.seed,
        step=scalor.step,
    )
    save_json(metrics, a.json)
    print({k: metrics[k] for k in ("mota", "count_mae", "precision", "recall", "step")})


if __name__ == "__main__":
    main()
