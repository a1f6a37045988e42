"""What ``ModelConfig.presence_floor`` changes in a training step of a trained run.

    python experiments/capacity/presence_floor.py runs/k32-box-velocity --ks 32 128 \
        --floors 1e-6 1e-4 --json experiments/capacity/presence_floor.json

For each capacity K and floor, one ELBO evaluation (the same guide samples, batch of 4-frame
windows of dsprites-ld training videos, the temperature and discovery prior of the step the run
was saved at) with the floor and without it: the relative change of the loss, the relative
change of the whole gradient (norm of the difference over the norm), the cosine between the two
gradients, and the share of decoded slots skipped.
"""

from __future__ import annotations

import argparse
import json

import pyro
import torch
from pyro.infer import Trace_ELBO

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.model import model as model_module


def loss_and_grad(scalor: Scalor, video, kw, seed: int, **changes):
    model, guide = scalor.programs(**changes)
    scalor.nets.zero_grad()
    pyro.set_rng_seed(seed)
    shares = []
    original = model_module.decode_glimpses

    def spy(decoder, what, presence=None, floor=0.0):
        shares.append(float((presence <= floor).float().mean()))
        return original(decoder, what, presence, floor)

    model_module.decode_glimpses = spy
    try:
        loss = Trace_ELBO().differentiable_loss(model, guide, video, **kw)
        loss.backward()
    finally:
        model_module.decode_glimpses = original
    grad = torch.cat([p.grad.flatten() for p in scalor.nets.parameters() if p.grad is not None])
    return float(loss.detach()), grad.clone(), sum(shares) / len(shares)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--ks", type=int, nargs="+", default=[32, 128])
    p.add_argument("--floors", type=float, nargs="+", default=[1e-6, 1e-4])
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--json")
    a = p.parse_args()
    torch.set_num_threads(1)
    scalor = Scalor.from_checkpoint(a.checkpoint)
    train = scalor.train_config
    kw = {"temperature": train.temperature(scalor.step),
          "disc_pres_prior": train.disc_pres_prior(scalor.step)}  # fmt: skip
    data = load_dataset(train.data_preset, "train", num_sequences=64)
    rows = []
    for seed in range(a.seeds):
        video = data.videos(range(seed * a.batch_size, (seed + 1) * a.batch_size))[:, :4]
        for k in a.ks:
            base, g0, share0 = loss_and_grad(scalor, video, kw, seed, max_objects=k)
            for floor in a.floors:
                loss, g, share = loss_and_grad(
                    scalor, video, kw, seed, max_objects=k, presence_floor=floor
                )
                row = {
                    "seed": seed,
                    "K": k,
                    "floor": floor,
                    "loss_rel_change": abs(loss - base) / abs(base),
                    "grad_rel_change": float((g - g0).norm() / g0.norm()),
                    "grad_cosine": float(
                        torch.nn.functional.cosine_similarity(g.double(), g0.double(), 0)
                    ),
                    "skipped_share": share,
                    "skipped_share_exact": share0,
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"checkpoint": a.checkpoint, "step": scalor.step, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
