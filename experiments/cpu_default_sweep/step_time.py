"""Median time of one training step (RMSprop, batch 4, 4 frames) of ``cpu-default`` models,
measured alternately in one process (2 threads, dsprites-ld test input).

    python experiments/cpu_default_sweep/step_time.py                    # sessions 3 and 4
    python experiments/cpu_default_sweep/step_time.py --session6         # session-6 variants
    python experiments/cpu_default_sweep/step_time.py --session6 --frames 3 --batch 8
    python experiments/cpu_default_sweep/step_time.py --session10        # session-10 variants
"""

from __future__ import annotations

import argparse
import statistics
import time

import pyro
import torch
from pyro.infer import TraceMeanField_ELBO

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.model.config import get_model_config

SESSION3 = get_model_config("cpu").replace(max_objects=12, min_scale=0.08, max_scale=0.22)
SESSION4 = SESSION3.replace(background_size=16, z_what_dim=8)
MODELS = {"session 3": SESSION3, "session 4": SESSION4}
#: session 6: the session-5 model (session 4's; dropout and tracking settings do not change a
#: step) with a 32-channel ConvLSTM, 8x8 encoder crops, or both
SESSION6 = {
    "session 5": SESSION4,
    "feature_dim 32": SESSION4.replace(feature_dim=32),
    "8x8 encoder crops": SESSION4.replace(encoder_glimpse_size=8),
    "both": SESSION4.replace(feature_dim=32, encoder_glimpse_size=8),
}

#: session 10: the session-9 model (session 4's) with the discovery residual and std 0.2
SESSION10 = {
    "session 9": SESSION4,
    "discovery residual": SESSION4.replace(discovery_residual=True),
    "std 0.2": SESSION4.replace(likelihood_std=0.2),
    "both (session 10)": SESSION4.replace(discovery_residual=True, likelihood_std=0.2),
}


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


def main(argv=None) -> int:
    """Print each model's median step time twice (interleaved); returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--session6", action="store_true", help="time the session-6 variants")
    p.add_argument("--session10", action="store_true", help="time the session-10 variants")
    p.add_argument("--frames", type=int, default=4, help="frames per training window")
    p.add_argument("--batch", type=int, default=4, help="sequences per batch")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    pyro.enable_validation(False)
    ds = load_dataset("dsprites-ld", "test", num_sequences=args.batch)
    video = torch.stack([ds[i]["video"][: args.frames] for i in range(args.batch)])
    models = SESSION10 if args.session10 else SESSION6 if args.session6 else MODELS
    for _ in range(2):
        for name, cfg in models.items():
            print(f"{name}: {median_step(cfg, video):.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
