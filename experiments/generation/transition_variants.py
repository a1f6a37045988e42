"""What limits the imagined motion: 5+5 generation of one checkpoint with its velocity
transition changed at generation time (the weights are the same; only the imagined frames
change, as the guide's inference does not read the carried motion).

    python experiments/generation/transition_variants.py runs/main-default \
        --variants as-trained imagined imagined+learned-what imagined+centroid-only \
        --json experiments/generation/transition_variants.json

``as-trained`` imagines with the transition the checkpoint was trained with, ``imagined`` with
the one its tracking config names for imagined frames (``imagine_transition_prior``,
``imagine_motion_estimate``). ``learned-what`` gives 'constant-velocity' what's learned residual
mean back; ``centroid-only`` makes the 'drawn' estimate read the centroid's move also where the
view cuts the object; ``measured-always`` makes it measure the drawing at imagined frames too
(rather than moving it with the box). ``no-correction`` centres an object's next centre change
on its carried motion alone (the tracker's learned correction to the centre is dropped; the
scale change keeps it);
``transition=T`` sets ``transition_prior`` ('velocity' or 'constant-velocity'), ``estimate=E``
``motion_estimate`` ('exponential', 'least-squares' or 'drawn'), ``smoothing=A``
``velocity_smoothing`` (the weight of the previous motion in the exponential average) and
``window=N`` ``velocity_window`` (the changes the least-squares slope is fitted to); parts join
with ``+``, as in ``estimate=exponential+smoothing=0.5``. Each variant reports the centre error
per imagined step with the transition means, for all matched objects and for those clear of the
view's edges, and the error of a line fitted to the model's own five inferred boxes (what a
better velocity estimate could reach from the same inferred boxes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

import pyro_scalor.model.model as model_module
import pyro_scalor.model.priors as priors
from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.eval.horizon import run_conditional


def without_correction(tracker_out, prev_what, prev_depth, prev_motion):
    """The ``velocity`` transition with the tracker's correction of the centre change dropped."""
    out = priors.velocity_transition(tracker_out, prev_what, prev_depth, prev_motion)
    loc, scale = out["where"]
    out["where"] = (torch.cat([loc[..., :2], prev_motion[..., 2:]], -1), scale)
    return out


def learned_what(tracker_out, prev_what, prev_depth, prev_motion):
    """``constant-velocity`` with what's mean the tracker's learned residual of the previous
    what (as ``velocity`` has it), not the previous what itself."""
    out = priors.constant_velocity_transition(tracker_out, prev_what, prev_depth, prev_motion)
    out["what"] = priors.learned_transition(tracker_out, prev_what, prev_depth, prev_motion)["what"]
    return out


def centroid_only(prev, now, image_size):
    """:func:`pyro_scalor.model.priors.drawn_change` reading the centroid's move everywhere,
    also where the view cuts the object."""
    return now[..., 4:6] - prev[..., 4:6]


def measured_always(cfg, slots, alpha, observed=True):
    """:func:`pyro_scalor.model.priors.observe_drawn` measuring the drawing at imagined frames
    too, as if they were observed."""
    return priors.observe_drawn(cfg, slots, alpha, True)


#: The ModelConfig fields a tracking config's transition for imagined frames sets.
IMAGINED = ("transition_prior", "motion_estimate")

#: Variant parts ``key=value`` and the ModelConfig field each sets.
SETTINGS = {
    "transition": ("transition_prior", str),
    "estimate": ("motion_estimate", str),
    "smoothing": ("velocity_smoothing", float),
    "window": ("velocity_window", int),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--variants", nargs="+", default=["as-trained", "no-correction"])
    p.add_argument("--data", default="dsprites-ld-long")
    p.add_argument("--num-sequences", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    data = load_dataset(a.data, "test", num_sequences=a.num_sequences)
    rows = []
    for variant in a.variants:
        scalor = Scalor.from_checkpoint(a.checkpoint)
        scalor.nets.eval()
        if scalor.config.transition_prior not in ("velocity", "constant-velocity"):
            raise SystemExit(f"{a.checkpoint} was not trained with the 'velocity' prior")
        imagined = scalor.tracking
        # every variant starts from the trained transition; 'imagined' takes the checkpoint's
        # transition for imagined frames (its tracking config)
        scalor.tracking = dataclasses.replace(
            imagined, imagine_transition_prior=None, imagine_motion_estimate=None
        )
        transitions = dict(priors.TRANSITIONS)
        saved = (priors.drawn_change, model_module.observe_drawn)
        for part in variant.split("+"):
            key, _, value = part.partition("=")
            if part == "no-correction":
                priors.TRANSITIONS["velocity"] = without_correction
            elif part == "learned-what":
                priors.TRANSITIONS["constant-velocity"] = learned_what
            elif part == "centroid-only":
                priors.drawn_change = centroid_only
            elif part == "measured-always":
                model_module.observe_drawn = measured_always
            elif part == "imagined":
                changes = imagined.model_changes(scalor.config, imagine=True)
                scalor.config = scalor.config.replace(
                    **{k: changes[k] for k in IMAGINED if k in changes}
                )
            elif key in SETTINGS:
                name, kind = SETTINGS[key]
                scalor.config = scalor.config.replace(**{name: kind(value)})
            elif part != "as-trained":
                raise SystemExit(f"unknown variant part {part!r} in {variant!r}")
        try:
            errors, _ = run_conditional(
                scalor,
                data,
                5,
                5,
                a.num_sequences,
                0,
                disc_pres_prior=0.001,
                noise_scale=0.0,
                cv_pixels=False,
            )
        finally:
            priors.TRANSITIONS.clear()
            priors.TRANSITIONS.update(transitions)
            priors.drawn_change, model_module.observe_drawn = saved
        row = {
            "variant": variant,
            **{name: getattr(scalor.config, name) for name, _ in SETTINGS.values()},
            "center_error_px": errors["center_error_px"],
            "in_view_center_error_px": errors["in_view"]["center_error_px"],
            "fitted_velocity_center_error_px": errors["fitted_velocity_center_error_px"],
            "matched_objects": errors["matched_objects"],
        }
        rows.append(row)
        steps = " / ".join(f"{v:.2f}" for v in row["center_error_px"])
        print(f"{variant:16s} {steps}  in view at step 5 {row['in_view_center_error_px'][-1]:.2f}")
    if a.json:
        a.json.write_text(json.dumps({"checkpoint": a.checkpoint, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
