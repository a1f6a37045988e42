"""Train one objective of the comparison with the model configuration the comparison used.

The comparison (``run.py``) was trained when the ``cpu-default`` preset still trained with
duplicate suppression (``ModelConfig.suppression=True``); the preset now trains without it. This
script re-creates that configuration, for re-running a single objective consistently:

    python experiments/objectives/train_as_compared.py elbo-relaxed 1 runs/objectives/elbo-relaxed
"""

from __future__ import annotations

import sys

from pyro_scalor.api import Scalor
from pyro_scalor.train.config import get_run_preset
from pyro_scalor.train.trainer import Trainer


def main(argv: list[str]) -> int:
    """``argv`` = objective, particles, run directory[, cache dir]; returns 0."""
    objective, particles, run_dir = argv[0], int(argv[1]), argv[2]
    preset = get_run_preset("cpu-default")
    cfg = preset.train.replace(
        objective=objective, particles=particles, max_seconds=480.0, threads=2, seed=0
    )
    model = cfg.model_config(preset.model).replace(suppression=True)
    scalor = Scalor(model, seed=cfg.seed)
    cache = argv[3] if len(argv) > 3 else None
    summary = Trainer(scalor, cfg, run_dir, cache_dir=cache, progress=False).fit()
    print(f"trained {summary['steps']} steps ({summary['train_seconds']:.0f} s in steps)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
