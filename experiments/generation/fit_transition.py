"""Refit only the transition prior of a trained checkpoint, with the guide and decoders frozen.

    python experiments/generation/fit_transition.py runs/cpu-ld --prior velocity \
        --steps 600 --run-dir runs/transition-velocity

Loads the checkpoint's networks into a model whose ``transition_prior`` is ``--prior`` (the
parameters are the same for every prior), freezes every network except the prior tracker (the
GRU that gives presence and the where/what/depth transition), and trains that tracker by the
ELBO on whole ``--seq-len``-frame training sequences at the end values of the checkpoint's
schedules. The guide, so tracking, is unchanged: the run asks only what each prior family can
learn of the posterior's dynamics. The result is a normal run folder for ``generate``.
"""

from __future__ import annotations

import argparse
import ast
import logging
import warnings
from pathlib import Path

import torch

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.train.checkpoint import load_checkpoint
from pyro_scalor.train.schedules import Schedule
from pyro_scalor.train.trainer import Trainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--prior", default="velocity")
    p.add_argument("--set", nargs="*", default=[], help="other ModelConfig field=value")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seq-len", type=int, default=8)
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--run-dir", type=Path, required=True)
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # frozen networks are left out of Pyro's param store on purpose
    warnings.filterwarnings("ignore", message=".*not registered in the param store")
    torch.set_num_threads(a.threads)
    ckpt = load_checkpoint(a.checkpoint)
    base = Scalor.from_checkpoint(a.checkpoint)
    train = ckpt["train_config"]
    changes = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in a.set)}
    model = base.config.replace(transition_prior=a.prior, **changes)
    scalor = Scalor(model, seed=train.seed, tracking=base.tracking)
    scalor.nets.load_state_dict(base.nets.state_dict())
    for name, param in scalor.nets.named_parameters():
        param.requires_grad_(name.startswith("prior_tracker."))
    config = train.replace(
        steps=a.steps,
        seq_len=a.seq_len,
        lr=a.lr,
        threads=a.threads,
        temperature=Schedule(train.temperature(train.steps)),
        disc_pres_prior=Schedule(train.disc_pres_prior(train.steps)),
        max_seconds=None,
    )
    data = load_dataset(config.data_preset, "train", num_sequences=config.num_train)
    resume = (a.run_dir / "checkpoint.pt").exists()
    Trainer(scalor, config, a.run_dir, dataset=data, resume=resume, progress=False).fit()


if __name__ == "__main__":
    main()
