"""Train one objective with the model configuration of the objective comparison.

The comparison trained the ``cpu-default`` preset as it was then: duplicate suppression on in
training (``ModelConfig.suppression=True``); the preset now trains without it. ``run.py`` calls
this script, so re-running the comparison reproduces the recorded configuration:

    python experiments/objectives/train_as_compared.py elbo-relaxed 1 runs/objectives/elbo-relaxed
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pyro_scalor.api import Scalor
from pyro_scalor.train.config import get_run_preset
from pyro_scalor.train.trainer import Trainer


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
    preset = get_run_preset("cpu-default")
    cfg = preset.train.replace(
        objective=args.objective,
        particles=args.particles,
        max_seconds=args.budget,
        threads=args.threads,
        seed=args.seed,
    )
    model = cfg.model_config(preset.model).replace(suppression=True)
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
