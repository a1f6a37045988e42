"""Where does a checkpoint's count error come from, and do tracking-time read-outs change it?

``counts``: tracks the first N sequences of a split with the preset's tracking settings and
prints the signed relative count error (#pred - #true) / #true per frame index, the error by
the number of true objects in the frame, how often all slots are present, and the number of
"invisible" objects per frame (presence > 0.5 but a rendered mask, alpha > 0.5, of no pixel).

``readout``: tracking metrics under read-outs that change no weights, one JSON line each:

- ``base``: the library's read-out;
- ``pres:P``: presence decisions at P instead of 0.5 (the guide's posterior modes);
- ``fallback:A``: an object whose mask has no pixel above alpha 0.5 gets its box (and counts)
  from the pixels above A instead;
- ``end-invisible:A``: propagated objects whose rendered alpha stays below A everywhere in the
  frame are ended (presence 0), in model and guide alike, before discovery.

The read-outs patch library internals for the duration of one evaluation and restore them.

``proposals``: does the guide propose anything where a true object is missed? For every visible
true object of the first N sequences (grouped as in ``misses.py``: inner, edge slivers entering
or leaving), the highest discovery presence probability among the 3x3 grid cells around the cell
holding the centre of its visible box, split by missed / matched and by t = 0 / t > 0.

    python experiments/cpu_default_sweep/undercount.py counts CKPT --split test --sequences 200
    python experiments/cpu_default_sweep/undercount.py readout CKPT base pres:0.35 \\
        fallback:0.1 end-invisible:0.5 --split val --sequences 100
    python experiments/cpu_default_sweep/undercount.py proposals CKPT --split val --sequences 100
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json

import numpy as np
import torch

import pyro_scalor.model.guide as guide_module
import pyro_scalor.model.model as model_module
from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.evaluation import evaluate
from pyro_scalor.model.geometry import paste
from pyro_scalor.model.render import decode_glimpses

KEYS = ("mota", "count_mae", "precision", "recall", "idf1", "id_switches", "propagated_fraction")


def load(checkpoint: str) -> Scalor:
    """The checkpoint on the CPU, with the cpu-default preset's tracking settings (0.5:0.5)."""
    scalor = Scalor.from_checkpoint(checkpoint, device="cpu")
    scalor.config = scalor.config.replace(
        suppression_threshold=0.5, track_suppression_threshold=0.5
    )
    return scalor


@contextlib.contextmanager
def patched(obj, name: str, value):
    """Set ``obj.name`` to ``value`` inside the block; restore it after."""
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def presence_at(threshold: float):
    """A replacement for the guide's presence mode: hard decision at ``threshold``."""

    def mode_value(probs: torch.Tensor, mode: str) -> torch.Tensor:
        hard = (probs > threshold).to(probs.dtype)
        return (hard * 2 - 1) * 30.0 if mode == "relaxed" else hard

    return mode_value


def record_with_fallback(alpha_min: float):
    """A replacement for the model's ``_record`` whose empty masks fall back to alpha > A."""
    original = model_module._record

    def record(rec, frame, bg_image, fg_mask, slots, alpha):
        original(rec, frame, bg_image, fg_mask, slots, alpha)
        a = alpha.squeeze(-3)
        box, area = model_module.mask_boxes(a > 0.5)
        box2, area2 = model_module.mask_boxes(a > alpha_min)
        empty = area < 1
        rec["mask_box"][-1] = torch.where(empty.unsqueeze(-1), box2, box).detach()
        rec["mask_area"][-1] = torch.where(empty, area2, area).detach()

    return record


def ending_invisible(method, alpha_min: float):
    """Wrap a ``_propagate`` method so that objects drawing nothing above ``alpha_min`` end."""

    def propagate(self, *args, **kwargs):
        slots = method(self, *args, **kwargs)
        with torch.no_grad():
            a = decode_glimpses(self.nets.glimpse_decoder, slots.what)[..., -1:, :, :]
            size = self.cfg.image_size
            seen = paste(a, slots.box, size, size).amax((-1, -2, -3)) > alpha_min
        return dataclasses.replace(slots, pres=slots.pres * seen.to(slots.pres.dtype))

    return propagate


def readout_context(spec: str) -> contextlib.AbstractContextManager:
    """The patches for one read-out ``spec`` (see the module doc)."""
    kind, _, value = spec.partition(":")
    stack = contextlib.ExitStack()
    if kind == "base":
        return stack
    if kind == "pres":
        stack.enter_context(patched(guide_module, "presence_mode_value", presence_at(float(value))))
    elif kind == "fallback":
        stack.enter_context(patched(model_module, "_record", record_with_fallback(float(value))))
    elif kind == "end-invisible":
        for cls in (model_module.ScalorModel, guide_module.ScalorGuide):
            stack.enter_context(
                patched(cls, "_propagate", ending_invisible(cls._propagate, float(value)))
            )
    else:
        raise SystemExit(f"unknown read-out {spec!r}: base, pres:P, fallback:A, end-invisible:A")
    return stack


def counts(args) -> None:
    """Print the count-error breakdown of one checkpoint."""
    scalor = load(args.checkpoint)
    ds = load_dataset("dsprites-ld", args.split, num_sequences=args.sequences)
    pred, true, present = [], [], []
    for lo in range(0, len(ds), 16):
        items = [ds[i] for i in range(lo, min(lo + 16, len(ds)))]
        res = scalor.track(torch.stack([it["video"] for it in items]), chunk=16).to("cpu")
        pred.append(res.valid.numpy().sum(-1))
        present.append((res.presence.numpy() > 0.5).sum(-1))
        true.append(np.stack([np.asarray(it["visible"]) for it in items]).sum(-1))
    pred, true, present = (np.concatenate(x).astype(float) for x in (pred, true, present))
    has = true > 0
    rel = np.abs(pred - true) / np.maximum(true, 1)
    signed = (pred - true) / np.maximum(true, 1)
    print(f"count MAE {rel[has].mean():.4f}, signed {signed[has].mean():+.4f}")
    for t in range(pred.shape[1]):
        m = has[:, t]
        print(f"  t={t}: MAE {rel[m, t].mean():.3f}, signed {signed[m, t].mean():+.3f}")
    for n in np.unique(true[has]).astype(int):
        m = true == n
        print(f"  {n:2d} true objects: {m.sum():4d} frames, MAE {rel[m].mean():.3f}")
    k = scalor.config.max_objects
    print(f"frames with all {k} slots present: {(present == k).mean():.4f}")
    print(f"present objects drawing no pixel, per frame: {(present - pred).mean():.3f}")


def readout(args) -> None:
    """Print one JSON line of tracking metrics per read-out."""
    for spec in args.readouts:
        with readout_context(spec):
            metrics, _ = evaluate(
                load(args.checkpoint),
                "dsprites-ld",
                args.split,
                num_sequences=args.sequences,
                progress=False,
            )
        out = {k: round(float(metrics[k]), 4) for k in KEYS}
        print(json.dumps({"readout": spec, **out}), flush=True)


@contextlib.contextmanager
def recording_discovery(calls: list):
    """Inside the block, append each discovery presence probability map the guide computes
    (a (..., B, G*G) tensor per frame) to ``calls``."""
    original = guide_module.ScalorGuide._pres

    def pres(self, name, probs, temperature):
        if name.startswith("disc"):
            calls.append(probs.detach())
        return original(self, name, probs, temperature)

    with patched(guide_module.ScalorGuide, "_pres", pres):
        yield calls


def nearby_max(probs: np.ndarray, box: np.ndarray, size: int) -> float:
    """Highest of the (G, G) cell probabilities ``probs`` in the 3x3 cells around the cell that
    holds the centre of pixel ``box`` (x0, y0, x1, y1) clipped to a ``size`` x ``size`` frame."""
    g = probs.shape[-1]
    x0, y0, x1, y1 = np.clip(box, 0, size)
    cell = size / g
    cx = min(int((x0 + x1) / 2 // cell), g - 1)
    cy = min(int((y0 + y1) / 2 // cell), g - 1)
    return float(probs[max(cy - 1, 0) : cy + 2, max(cx - 1, 0) : cx + 2].max())


def proposals(args) -> None:
    """Print one JSON line per group, outcome and frame kind: discovery presence nearby."""
    import misses  # this script's folder is on sys.path when it runs as a script

    scalor = load(args.checkpoint)
    g, size = scalor.config.grid_size, scalor.config.image_size
    ds = load_dataset("dsprites-ld", args.split, num_sequences=args.sequences)
    rows = []
    for lo in range(0, len(ds), 8):
        items = [ds[i] for i in range(lo, min(lo + 8, len(ds)))]
        video = torch.stack([it["video"] for it in items])
        with recording_discovery([]) as calls:
            res = scalor.track(video, chunk=len(items))
        probs = torch.stack(calls, 1).reshape(len(items), -1, g, g).numpy()  # (B, T, G, G)
        for b, t, k, best, group in misses.scored_objects(items, res, size):
            near = nearby_max(probs[b, t], items[b]["boxes"][t, k].numpy(), size)
            rows.append((group, best >= 0.5, t > 0, near))
    for group in ("inner", "edge entering", "edge leaving"):
        for matched in (False, True):
            for later in (False, True):
                near = np.array([r[3] for r in rows if r[:3] == (group, matched, later)])
                if len(near) == 0:
                    continue
                out = {
                    "group": group,
                    "matched": matched,
                    "frames": "t>0" if later else "t=0",
                    "objects": len(near),
                    "mean_nearby_discovery_presence": round(float(near.mean()), 3),
                    "share_over_0.5": round(float((near > 0.5).mean()), 3),
                    "share_over_0.1": round(float((near > 0.1).mean()), 3),
                }
                print(json.dumps(out), flush=True)


def main(argv=None) -> int:
    """Run the ``counts``, ``readout`` or ``proposals`` analysis; returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("counts", "readout", "proposals"))
    p.add_argument("checkpoint")
    p.add_argument("readouts", nargs="*", default=["base"], metavar="READOUT")
    p.add_argument("--split", default="val")
    p.add_argument("--sequences", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    {"counts": counts, "readout": readout, "proposals": proposals}[args.what](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
