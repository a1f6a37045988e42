"""Run presets for each density of the paper's Table 1: dsprites MD, HD, VHD and MNIST MD, on a
2-core CPU and on a GPU.

Each is built from a base preset (``cpu-capacity`` for the CPU, ``gpu-default`` for the GPU) by
changing what the density needs:

- **capacity**: at least the most objects a scene of that density shows (MD 26, HD 63, VHD 115
  visible at most), rounded up with room to spare: 32, 80 and 128 slots;
- **grid**: 8x8 cells of 8 px where objects are 7-13 px (MD); 16x16 cells of 4 px where they
  are 5-9 px and crowd (HD, VHD: 17.9 and 50.2 visible objects per frame share an 8-px cell
  with another, 5.5 and 18.3 a 4-px cell);
- **object-scale bounds** around that density's object sizes (``min_scale`` and ``max_scale``
  are fractions of the 64-px frame: 0.06-0.16 is 4-10 px for objects of 5-9 px);
- **glimpses** stay 16 px (decoded and encoded) at every density: no object of these sets is
  larger (dSprites 5-13 px, MNIST digits 10-16 px), and smaller ones are upsampled into it;
- **duplicate rules in training** (proposal suppression and ending duplicate trackers, box
  overlap above 0.5): with more slots than objects, training without them explained one object
  with several parts (experiments/capacity: 32 slots on dsprites-ld, count MAE 0.268 without,
  0.139 with them);
- **training length** for the platform: a fixed number of steps (the same command gives the same
  result on any host), sized from the step time measured on the 2-core CPU with 2 threads, or
  for about 5 minutes of CUDA-graph training on a GPU.
"""

from __future__ import annotations

import dataclasses

from pyro_scalor.train.schedules import Schedule

#: Training-time duplicate rules of every density preset (see the module docstring).
TRAINING_DUPLICATE_RULES = {
    "suppression": True,
    "suppression_threshold": 0.5,
    "track_suppression_threshold": 0.5,
}

#: Per density: data preset, model changes, CPU steps (and the 2-thread CPU step time in seconds
#: they were sized from: experiments/tracking_density/scaling.json for ld, md, hd and vhd; the
#: mnist presets have the same network shapes as ld and md; 10-15 measured with
#: experiments/capacity/step_time.py), GPU steps, and what the preset is for.
DENSITIES = {
    "ld": (
        "dsprites-ld",
        {"max_objects": 32},
        4600,
        0.369,
        12000,
        "dsprites-ld (9.2 objects per frame) with the density presets' rules: 32 slots, 8x8 grid",
    ),
    "md": (
        "dsprites-md",
        {"max_objects": 32},
        9000,
        0.389,
        12000,
        "dsprites-md (21.9 objects per frame): 32 slots, 8x8 grid",
    ),
    "hd": (
        "dsprites-hd",
        {"max_objects": 80, "grid_size": 16, "min_scale": 0.06, "max_scale": 0.16},
        4400,
        0.808,
        8000,
        "dsprites-hd (54.5 objects of 5-9 px per frame): 80 slots, 16x16 grid",
    ),
    "vhd": (
        "dsprites-vhd",
        {"max_objects": 128, "grid_size": 16, "min_scale": 0.06, "max_scale": 0.14},
        3000,
        1.0,
        6000,
        "dsprites-vhd (99 objects of 5-8 px per frame): 128 slots, 16x16 grid",
    ),
    "mnist-md": (
        "mnist-md",
        {"max_objects": 32, "min_scale": 0.12, "max_scale": 0.3},
        9000,
        0.389,
        12000,
        "mnist-md (21.9 digits of 10-16 px per frame): 32 slots, 8x8 grid",
    ),
    # the paper's generalisation experiments train on these and track denser or unseen scenes
    "10-15": (
        "dsprites-10-15",
        {"max_objects": 32, "grid_size": 16, "min_scale": 0.06, "max_scale": 0.16},
        2400,
        0.496,
        8000,
        "dsprites-10-15 (10-15 objects of 5-9 px; tracked on dsprites-50-60 with 80 slots): "
        "32 slots, 16x16 grid",
    ),
    "mnist-0-5": (
        "mnist-0-5",
        {"max_objects": 32, "min_scale": 0.12, "max_scale": 0.3},
        3600,
        0.369,
        12000,
        "mnist-0-5 (digits 0-5; tracked on the unseen digits of mnist-6-9): 32 slots, 8x8 grid",
    ),
}


def _ramps(train, steps: int, temperature_of: float, prior_of: float):
    """``train`` with ``steps`` and its ramps scaled to them (fractions of the base's steps)."""
    return train.replace(
        steps=steps,
        temperature=Schedule(1.0, 0.5, int(steps * temperature_of), "linear"),
        disc_pres_prior=Schedule(0.1, 1e-8, int(steps * prior_of), "exponential"),
    )


def density_presets(cpu_base, gpu_base) -> dict:
    """The presets ``cpu-<density>`` and ``gpu-<density>`` for each entry of :data:`DENSITIES`,
    built from the run presets ``cpu_base`` (``cpu-capacity``) and ``gpu_base``
    (``gpu-default``)."""
    out = {}
    for name, (data, model_changes, cpu_steps, step_s, gpu_steps, what) in DENSITIES.items():
        changes = {**model_changes, **TRAINING_DUPLICATE_RULES}
        cpu_train = _ramps(cpu_base.train, cpu_steps, 5000 / 6000, 3750 / 6000)
        minutes = round(cpu_steps * step_s / 60)
        out[f"cpu-{name}"] = dataclasses.replace(
            cpu_base,
            model=cpu_base.model.replace(**changes),
            train=cpu_train.replace(data_preset=data),
            description=f"{what}; {cpu_steps} steps, about {minutes} minutes on a 2-core CPU",
        )
        gpu_train = _ramps(gpu_base.train, gpu_steps, 4000 / 14400, 3000 / 14400)
        out[f"gpu-{name}"] = dataclasses.replace(
            gpu_base,
            model=gpu_base.model.replace(
                propagation="gated", merge="tracks", rejection_rule="mask", **changes
            ),
            train=gpu_train.replace(data_preset=data),
            tracking=cpu_base.tracking,
            description=f"{what}; {gpu_steps} CUDA-graph steps, about 5 minutes on an H100",
        )
    return out
