"""Track a checkpoint with every duplicate rule off, including those it was trained with.

    python experiments/tracking_density/without_rules.py runs/cpu-md dsprites-md 200

``evaluate --no-suppression`` tracks with the rules a model was trained with; this switches off
the model's proposal suppression and tracker ending as well, to see what the rules remove.
"""

from __future__ import annotations

import json
import sys

import torch

from pyro_scalor.api import Scalor
from pyro_scalor.eval.tracking import evaluate
from pyro_scalor.model.config import TrackingConfig


def main() -> None:
    checkpoint, data, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)
    trained = Scalor.from_checkpoint(checkpoint)
    config = trained.config.replace(suppression=False, track_suppression_threshold=0.0)
    off = TrackingConfig(suppression=False, track_suppression_threshold=0.0)
    scalor = Scalor(config, seed=0, tracking=off)
    scalor.nets.load_state_dict(trained.nets.state_dict())
    metrics, _ = evaluate(scalor, data, "test", num_sequences=n, progress=False)
    keys = ("mota", "count_mae", "precision", "recall", "found_by_frame")
    print(json.dumps({k: metrics[k] for k in keys}))


if __name__ == "__main__":
    main()
