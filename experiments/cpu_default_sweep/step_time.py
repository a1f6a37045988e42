"""Median time of one training step (RMSprop, batch 4, 4 frames) for the session-3 and session-4
``cpu-default`` models, measured alternately in one process (2 threads, dsprites-ld test input).

    python experiments/cpu_default_sweep/step_time.py
"""

from __future__ import annotations

import statistics
import time

import pyro
import torch
from pyro.infer import TraceMeanField_ELBO

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.model.config import get_model_config

SESSION3 = get_model_config("cpu").replace(max_objects=12, min_scale=0.08, max_scale=0.22)
MODELS = {"session 3": SESSION3, "session 4": SESSION3.replace(background_size=16, z_what_dim=8)}


def median_step(cfg, video: torch.Tensor, warmup: int = 3, steps: int = 15) -> float:
    """Median seconds of a full training step (loss, backward, RMSprop update) of ``cfg``."""
    scalor = Scalor(cfg, seed=0)
    opt = torch.optim.RMSprop(scalor.nets.parameters(), lr=3e-4)
    elbo = TraceMeanField_ELBO()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        opt.zero_grad()
        elbo.differentiable_loss(
            scalor.model, scalor.guide, video, temperature=1.0, disc_pres_prior=0.1
        ).backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    """Print each model's median step time twice (interleaved); returns 0."""
    torch.set_num_threads(2)
    pyro.enable_validation(False)
    ds = load_dataset("dsprites-ld", "test", num_sequences=4)
    video = torch.stack([ds[i]["video"][:4] for i in range(4)])
    for _ in range(2):
        for name, cfg in MODELS.items():
            print(f"{name}: {median_step(cfg, video):.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
