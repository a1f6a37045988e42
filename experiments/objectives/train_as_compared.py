"""Train one objective with the model configuration of the objective comparison.

The comparison trained one configuration for every objective: the ``cpu`` model with 12 slots
and duplicate suppression in training (``ModelConfig.suppression=True``), RMSprop at 3e-4 on
whole 8-frame dsprites-ld sequences, temperature 1.0 -> 0.5 over 2000 steps and the discovery
presence prior 0.1 -> 1e-8 over 1500 (``COMPARED_MODEL`` / ``COMPARED_TRAIN``). ``run.py``
calls this script, so running the comparison again trains the recorded configuration:

    python experiments/objectives/train_as_compared.py elbo-relaxed 1 runs/objectives/elbo-relaxed
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pyro_scalor.api import Scalor
from pyro_scalor.model.config import get_model_config
from pyro_scalor.train.config import TrainConfig
from pyro_scalor.train.schedules import Schedule
from pyro_scalor.train.trainer import Trainer

#: the configuration the comparison trained (objective, particles and budget set per run)
COMPARED_MODEL = get_model_config("cpu").replace(max_objects=12, suppression=True)
COMPARED_TRAIN = TrainConfig(
    steps=2000,
    lr=3e-4,
    num_train=10000,
    temperature=Schedule(1.0, 0.5, 2000, "linear"),
    disc_pres_prior=Schedule(0.1, 1e-8, 1500, "exponential"),
)


def main(argv=None) -> int:
    """Train one objective to the time budget (resuming a checkpoint there); returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("objective")
    p.add_argument("particles", type=int)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--budget", type=float, default=480.0, help="seconds in training steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache-dir", type=Path, default=None)
    args = p.parse_args(argv)
    cfg = COMPARED_TRAIN.replace(
        objective=args.objective,
        particles=args.particles,
        max_seconds=args.budget,
        threads=args.threads,
        seed=args.seed,
    )
    model = cfg.model_config(COMPARED_MODEL)
    scalor = Scalor(model, seed=cfg.seed)
    resume = (args.run_dir / "checkpoint.pt").exists()
    trainer = Trainer(
        scalor, cfg, args.run_dir, resume=resume, cache_dir=args.cache_dir, progress=False
    )
    summary = trainer.fit()
    print(f"trained {summary['steps']} steps ({summary['train_seconds']:.0f} s in steps)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
