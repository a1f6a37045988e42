"""How well a checkpoint's boxes follow the true objects in 5+5 generation, and where its step-5
error comes from.

    python experiments/generation/box_accuracy.py runs/main-default \
        --json experiments/generation/box_accuracy.json

Conditional generation as ``pyro-scalor generate --observe 5 --horizon 5 --noise-scale 0
--disc-pres-prior 0.001`` on ``dsprites-ld-long`` test sequences; tracked objects matched to the
truth at the last observed frame (IoU >= 0.5, Hungarian). Two reports:

* ``tracks``: objects clear of the view's edges and tracked through all ten frames. Per
  observed frame, how far the glimpse box (z_where) centre and the mask box (the drawn object)
  centre stray from the true centre once each track's constant offset (its mean over the last
  three observed frames) is removed; and the step-5 error of a straight line fitted to each
  kind of observed centre, against the model's own imagined box.
* ``categories``: the model's step-5 error of every matched object still visible and tracked,
  by whether it was clear of the edges while observed (or at an edge, or entered the view then)
  and while imagined: count, mean, median, 90th percentile, and the five largest errors with
  the observed frame at which each track was first tracked.

``--set field=value`` changes a ModelConfig field at generation time (as
``transition_variants.py``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyro
import torch
from scipy.optimize import linear_sum_assignment

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.eval.horizon import clear_of_edges
from pyro_scalor.metrics.boxes import box_centers, iou_matrix

OBSERVE, HORIZON = 5, 5


def line_at(centres: np.ndarray, at: int) -> np.ndarray:
    """A least-squares line through ``centres`` (T, 2) at frames 0..T-1, evaluated at ``at``."""
    t = np.arange(len(centres))
    return np.array([np.polyval(np.polyfit(t, centres[:, d], 1), at) for d in range(2)])


def matched(batch, result, b: int):
    """(track id, true object) pairs matched at the last observed frame of sequence ``b``."""
    t0 = OBSERVE - 1
    valid, boxes = result["valid"][b, t0], result["boxes"][b, t0]
    pi, gi = np.flatnonzero(valid), np.flatnonzero(batch["visible"][b, t0])
    if not pi.size or not gi.size:
        return []
    iou = iou_matrix(boxes[pi], batch["boxes"][b, t0, gi])
    rows, cols = linear_sum_assignment(-iou)
    keep = iou[rows, cols] >= 0.5
    return [(result["ids"][b, t0, pi[r]], gi[c]) for r, c in zip(rows[keep], cols[keep])]


def centres_of(result, key: str, b: int, track: int) -> np.ndarray:
    """Centres (T, 2) of ``track``'s ``key`` boxes over the frames, NaN where it is absent."""
    out = np.full((result["ids"].shape[1], 2), np.nan)
    for t in range(out.shape[0]):
        slot = np.flatnonzero(result["valid"][b, t] & (result["ids"][b, t] == track))
        if slot.size:
            out[t] = box_centers(result[key][b, t, slot[0]])
    return out


def category(inside: np.ndarray, visible: np.ndarray) -> str:
    """Where an object was while observed and while imagined (frames 0..9 of one object)."""
    if inside[:OBSERVE].all():
        seen = "clear while observed"
    elif visible[0]:
        seen = "at an edge while observed"
    else:
        seen = "entered the view while observed"
    return seen + (", clear while imagined" if inside[OBSERVE:].all() else ", at an edge after")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--set", nargs="*", default=[], help="ModelConfig field=value")
    p.add_argument("--num-sequences", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    scalor = Scalor.from_checkpoint(a.checkpoint)
    scalor.nets.eval()
    for setting in a.set:
        name, _, value = setting.partition("=")
        kind = type(getattr(scalor.config, name))
        scalor.config = scalor.config.replace(**{name: kind(value)})
    data = load_dataset("dsprites-ld-long", "test", num_sequences=a.num_sequences)
    pyro.set_rng_seed(0)
    tracks, errors = [], {}
    last = OBSERVE + HORIZON - 1
    for lo in range(0, a.num_sequences, 16):
        items = [data[i] for i in range(lo, min(lo + 16, a.num_sequences))]
        video = torch.stack([it["video"] for it in items])
        gen = scalor.generate(video[:, :OBSERVE], HORIZON, disc_pres_prior=0.001, noise_scale=0.0)
        result = {
            "boxes": gen.boxes.numpy().astype(float),
            "glimpse": gen.glimpse_boxes.numpy().astype(float),
            "ids": gen.ids.numpy(),
            "valid": gen.valid.numpy().astype(bool),
        }
        batch = {k: torch.stack([it[k] for it in items]).numpy() for k in ("boxes", "visible")}
        inside = clear_of_edges(batch["boxes"], batch["visible"], *video.shape[-2:])
        for b in range(len(items)):
            for track, o in matched(batch, result, b):
                truth = np.array([box_centers(batch["boxes"][b, t, o]) for t in range(last + 1)])
                mask = centres_of(result, "boxes", b, track)
                if not batch["visible"][b, last, o] or np.isnan(mask[last]).any():
                    continue
                err = float(np.linalg.norm(mask[last] - truth[last]))
                key = category(inside[b, : last + 1, o], batch["visible"][b, : last + 1, o])
                found = int(np.flatnonzero(~np.isnan(mask[:, 0]))[0])
                errors.setdefault(key, []).append((err, found))
                if inside[b, : last + 1, o].all() and not np.isnan(mask).any():
                    glimpse = centres_of(result, "glimpse", b, track)
                    tracks.append(np.stack([mask, glimpse, truth]))
    t = np.stack(tracks)  # (N, 3 kinds, T, 2)
    kinds = ("mask", "glimpse", "true")
    dev = t[:, :, :OBSERVE] - t[:, 2:3, :OBSERVE]
    dev -= dev[:, :, OBSERVE - 3 :].mean(2, keepdims=True)
    report = {
        "checkpoint": a.checkpoint,
        "settings": a.set,
        "tracks": {
            "count": int(len(t)),
            "stray_per_observed_frame_px": {
                k: np.linalg.norm(dev[:, i], axis=-1).mean(0).round(3).tolist()
                for i, k in enumerate(kinds[:2])
            },
            "line_error_at_step5_px": {
                k: float(
                    np.mean([np.linalg.norm(line_at(x[i, :OBSERVE], last) - x[2, last]) for x in t])
                )
                for i, k in enumerate(kinds)
            },
            "model_error_at_step5_px": float(
                np.linalg.norm(t[:, 0, last] - t[:, 2, last], axis=-1).mean()
            ),
        },
        "categories": {
            k: {
                "count": len(v),
                "mean": float(np.mean([e for e, _ in v])),
                "median": float(np.median([e for e, _ in v])),
                "p90": float(np.percentile([e for e, _ in v], 90)),
                "largest_and_frame_found": sorted(v)[-5:],
            }
            for k, v in sorted(errors.items())
        },
    }
    print(json.dumps(report, indent=1))
    if a.json:
        a.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
