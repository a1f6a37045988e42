"""Ways to run the cpu-default training step faster on the CPU, timed in one process.

Each variant runs the same step (the 'elbo' objective's loss and gradients, gradient clipping,
RMSprop) of the ``cpu-default`` model on 4 dsprites-ld test sequences cut to 4 frames, with
temperature 0.7 and discovery prior 1e-3. It takes the median of the timed steps after the
warm-up; compilation happens in the warm-up and its time is printed separately.

    python experiments/speed/cpu_step_variants.py                       # all variants, 2 threads
    python experiments/speed/cpu_step_variants.py eager batch1 --threads 1

Variants: ``eager`` (as trained); ``batch1``, ``batch2`` (fewer sequences: how much of the step is
a fixed cost); ``no-mkldnn`` (torch's native convolutions); ``compile-nets`` (``torch.compile``
on every network's forward); ``compile-loss`` (``torch.compile`` on the whole Pyro loss);
``jit`` (Pyro's ``JitTraceMeanField_ELBO``). ``--count-ops`` instead counts the aten operations
of one eager step (loss, backward, clipping and update).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import pyro
import torch
from pyro.infer import JitTraceMeanField_ELBO, TraceMeanField_ELBO

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.train.config import get_run_preset

VARIANTS = ("eager", "batch1", "batch2", "no-mkldnn", "compile-nets", "compile-loss", "jit")
NETS = (
    "glimpse_encoder",
    "glimpse_decoder",
    "bg_decoder",
    "bg_encoder",
    "image_encoder",
    "mask_encoder",
    "discovery_head",
)
KW = {"temperature": 0.7, "disc_pres_prior": 1e-3}


def time_variant(name: str, warmup: int, steps: int) -> dict:
    """Build a fresh seeded model, run ``warmup`` then ``steps`` steps of variant ``name``.

    Returns ``{"variant", "first_step_s", "median_s", "min_s"}``.
    """
    pyro.clear_param_store()
    pyro.enable_validation(False)
    preset = get_run_preset("cpu-default")
    scalor = Scalor(preset.model, seed=0)
    nets = scalor.nets
    batch = {"batch1": 1, "batch2": 2}.get(name, 4)
    data = load_dataset("dsprites-ld", "test", num_sequences=8)
    video = torch.stack([data[i]["video"][:4] for i in range(batch)])
    torch.backends.mkldnn.enabled = name != "no-mkldnn"
    if name == "compile-nets":
        for net in NETS:
            module = getattr(nets, net)
            module.forward = torch.compile(module.forward, dynamic=False)
    elbo = (JitTraceMeanField_ELBO if name == "jit" else TraceMeanField_ELBO)(max_plate_nesting=2)

    def loss_fn(v: torch.Tensor) -> torch.Tensor:
        return elbo.differentiable_loss(scalor.model, scalor.guide, v, **KW)

    if name == "compile-loss":
        loss_fn = torch.compile(loss_fn)
    opt = torch.optim.RMSprop(nets.parameters(), lr=3e-4)

    def step() -> None:
        loss_fn(video).backward()
        torch.nn.utils.clip_grad_norm_(nets.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    times = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    torch.backends.mkldnn.enabled = True
    timed = times[warmup:]
    return {
        "variant": name,
        "first_step_s": round(times[0], 3),
        "median_s": round(statistics.median(timed), 4),
        "min_s": round(min(timed), 4),
    }


def count_ops() -> dict:
    """Aten operations dispatched in one eager step (after a warm-up step): total and top 10."""
    from collections import Counter

    from torch.utils._python_dispatch import TorchDispatchMode

    counts: Counter = Counter()

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            counts[str(func)] += 1
            return func(*args, **(kwargs or {}))

    pyro.clear_param_store()
    pyro.enable_validation(False)
    scalor = Scalor(get_run_preset("cpu-default").model, seed=0)
    data = load_dataset("dsprites-ld", "test", num_sequences=8)
    video = torch.stack([data[i]["video"][:4] for i in range(4)])
    elbo = TraceMeanField_ELBO(max_plate_nesting=2)
    opt = torch.optim.RMSprop(scalor.nets.parameters(), lr=3e-4)

    def step() -> int:
        loss = elbo.differentiable_loss(scalor.model, scalor.guide, video, **KW)
        forward = sum(counts.values())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(scalor.nets.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return forward

    step()  # warm-up, not counted
    with Count():
        forward = step()
    total = sum(counts.values())
    return {"forward_ops": forward, "total_ops": total, "top": counts.most_common(10)}


def main(argv=None) -> int:
    """Time the chosen variants; prints one JSON line each; returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variants", nargs="*", help=f"any of {', '.join(VARIANTS)} (default: all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--count-ops", action="store_true", help="count one step's operations")
    args = p.parse_args(argv)
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    if args.count_ops:
        print(json.dumps(count_ops()))
        return 0
    for name in args.variants or VARIANTS:
        row = time_variant(name, args.warmup, args.steps)
        print(json.dumps({**row, "threads": args.threads}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
