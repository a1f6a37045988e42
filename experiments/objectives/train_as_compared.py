"""Train one objective with the model configuration of the objective comparison.

The comparison trained the ``cpu-default`` preset as it was in session 2 (the preset has changed
since; its session-2 form is ``BASE_MODEL`` / ``BASE_TRAIN`` of
``experiments/cpu_default_sweep/sweep.py``), with duplicate suppression on in training
(``ModelConfig.suppression=True``) and the default checkpoint and image intervals. ``run.py``
calls this script, so re-running the comparison reproduces the recorded configuration (the
checkpoints in ``runs/objectives`` hold exactly these configs):

    python experiments/objectives/train_as_compared.py elbo-relaxed 1 runs/objectives/elbo-relaxed
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from pyro_scalor.api import Scalor
from pyro_scalor.train.config import TrainConfig
from pyro_scalor.train.trainer import Trainer


def _session2_preset():
    """``(BASE_MODEL, BASE_TRAIN)`` of the sweep script: the session-2 ``cpu-default``."""
    path = Path(__file__).resolve().parents[1] / "cpu_default_sweep" / "sweep.py"
    spec = importlib.util.spec_from_file_location("cpu_default_sweep", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BASE_MODEL, module.BASE_TRAIN


_MODEL, _TRAIN = _session2_preset()
#: the configuration the comparison trained (objective, particles and budget set per run)
COMPARED_MODEL = _MODEL.replace(suppression=True)
COMPARED_TRAIN = _TRAIN.replace(
    checkpoint_every=TrainConfig.checkpoint_every, image_every=TrainConfig.image_every
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
