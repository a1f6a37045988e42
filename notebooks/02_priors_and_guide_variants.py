# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Swapping priors and guide variants
#
# This notebook trains the same data under four model and training variants with one budget
# and seed, and measures what each part of SCALOR contributes.
#
# Every swappable part is a field of `ModelConfig` (model and guide) or `TrainConfig`
# (training), so a variant is a `config.replace(...)`:
#
# * **baseline**: the CPU default.
# * **no rejection** (`ModelConfig.rejection=False`, tracked with
#   `TrackingConfig(suppression=False)`): proposals
#   overlapping propagated objects (or each other) are kept, in training and in tracking.
#   Expect more rediscovery, duplicate boxes and trackers that give up (propagation collapse).
# * **fixed transition prior** (`transition_prior="fixed"`): propagated `what`/`where`/`depth`
#   get a standard-normal prior instead of the learned GRU transition, so movement is not
#   predicted. Two more choices centre each object's next move on its motion, so imagined
#   objects keep moving: `transition_prior="velocity"` (plus the GRU's correction; the CPU
#   default trains with it) and `"constant-velocity"` (the motion alone, the shape kept; the
#   CPU default imagines frames with it, `TrackingConfig.imagine_transition_prior`);
#   `motion_estimate` says how the motion is estimated from the object's past; add one to
#   `VARIANTS` below to compare it.
# * **no discovery dropout** (`TrainConfig.discovery_dropout=0`): discovery is never switched
#   off during training, so it can take over what the trackers should explain.
#
# Measured for each: MOTA, count MAE, `propagated_fraction` (matched objects, after their first
# frame, that were propagated rather than rediscovered), mean number of newly discovered
# objects per frame after t = 0 (`TrackingResult.num_discovered`), and the final training loss.
#
# **Budget.** Full mode trains each variant for 400 steps (set `PYRO_SCALOR_VARIANT_STEPS` to
# change it) on 2000 training sequences, with the schedules compressed to that length and the
# CPU default's 4-frame training windows: a few minutes per variant on a 2-core CPU. Run
# directories live under `runs/notebook-variants/`, so a rerun loads finished variants instead
# of training them again. In smoke mode each variant trains the tiny model for 2 steps: the
# numbers are meaningless but computed exactly the same way.

# %% [markdown]
# `notebook_settings()` (in `pyro_scalor/notebook.py`, shared by the notebooks) reads
# `PYRO_SCALOR_SMOKE`: smoke mode uses tiny sizes, a temporary work folder and 1 thread, so
# nothing is written into the repository. `show(fig)` displays a matplotlib figure.

# %%
import os

from pyro_scalor.notebook import notebook_settings, show

SETTINGS = notebook_settings()
SMOKE, ROOT, WORK = SETTINGS.smoke, SETTINGS.root, SETTINGS.work
CACHE, DEVICE = SETTINGS.cache, SETTINGS.device  # CACHE None: the default data cache
print(SETTINGS.describe())

# %%
import pyro

from pyro_scalor.api import TrackingConfig
from pyro_scalor.model.config import get_model_config
from pyro_scalor.train.config import get_run_preset
from pyro_scalor.train.schedules import Schedule

if SMOKE:
    BASE_MODEL = get_model_config("tiny")
    BASE_TRAIN = get_run_preset("smoke").train.replace(steps=2, log_every=100)
    N_EVAL = 2
    RUNS = WORK / "variants"
else:
    steps = int(os.environ.get("PYRO_SCALOR_VARIANT_STEPS", "400"))
    BASE_MODEL = get_run_preset("cpu-default").model
    BASE_TRAIN = get_run_preset("cpu-default").train.replace(
        steps=steps,
        num_train=2000,
        temperature=Schedule(1.0, 0.5, steps, "linear"),
        disc_pres_prior=Schedule(0.1, 1e-8, max(1, steps // 2), "exponential"),
        checkpoint_every=100,
    )
    N_EVAL = 100
    RUNS = ROOT / "runs" / "notebook-variants"
DATA = BASE_TRAIN.data_preset

BASE_TRACKING = get_run_preset("cpu-default").tracking
# each variant: (model config, training config, tracking-time settings)
VARIANTS = {
    "baseline": (BASE_MODEL, BASE_TRAIN, BASE_TRACKING),
    "no rejection": (
        BASE_MODEL.replace(rejection=False),
        BASE_TRAIN,
        TrackingConfig(suppression=False),
    ),
    "fixed transition prior": (
        BASE_MODEL.replace(transition_prior="fixed"),
        BASE_TRAIN,
        BASE_TRACKING,
    ),
    "no discovery dropout": (BASE_MODEL, BASE_TRAIN.replace(discovery_dropout=0.0), BASE_TRACKING),
}
print(
    f"{len(VARIANTS)} variants x {BASE_TRAIN.steps} steps, batch {BASE_TRAIN.batch_size}, "
    f"seed {BASE_TRAIN.seed}, data {DATA}; evaluated on {N_EVAL} test sequences"
)

# %%
import json
import time

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.train.checkpoint import load_checkpoint

train_set = load_dataset(DATA, "train", num_sequences=BASE_TRAIN.num_train, cache_dir=CACHE)
models = {}
final_loss = {}
for name, (model_cfg, train_cfg, tracking) in VARIANTS.items():
    run_dir = RUNS / name.replace(" ", "-")
    ckpt = run_dir / "checkpoint.pt"
    summary_file = run_dir / "summary.json"
    pyro.clear_param_store()
    if ckpt.exists() and summary_file.exists() and load_checkpoint(ckpt)["step"] >= train_cfg.steps:
        scalor = Scalor.from_checkpoint(ckpt, device=DEVICE)
        scalor.tracking = tracking
        summary = json.loads(summary_file.read_text())
        print(f"{name}: loaded {ckpt}")
    else:
        start = time.perf_counter()
        # the same seed for all
        scalor = Scalor(model_cfg, device=DEVICE, seed=train_cfg.seed, tracking=tracking)
        summary = scalor.fit(
            train_cfg,
            run_dir,
            dataset=train_set,
            resume=ckpt.exists(),
            progress=not SMOKE,
            tensorboard=not SMOKE,
        )
        summary_file.write_text(json.dumps(summary))
        print(f"{name}: trained {summary['steps']} steps in {time.perf_counter() - start:.0f} s")
    models[name] = scalor
    final_loss[name] = summary["loss_ema"]  # moving average of the per-sequence loss

# %% [markdown]
# ## Measure
#
# Each variant tracks the same test sequences with posterior modes.

# %%
import pandas as pd

from pyro_scalor.eval.tracking import evaluate

rows = []
for name, scalor in models.items():
    metrics, example = evaluate(
        scalor,
        DATA,
        "test",
        num_sequences=N_EVAL,
        batch_size=N_EVAL,
        cache_dir=CACHE,
        progress=False,
    )
    res = example["result"]  # all N_EVAL sequences (batch_size=N_EVAL), on the CPU
    rows.append(
        {
            "variant": name,
            "MOTA": metrics["mota"],
            "count MAE": metrics["count_mae"],
            "propagated fraction": metrics["propagated_fraction"],
            "discovered / frame (t>0)": float(res.num_discovered[:, 1:].float().mean()),
            "final loss": final_loss[name],
        }
    )
table = pd.DataFrame(rows).set_index("variant")
table.round(3)

# %%
from pyro_scalor.viz import new_figure

fig = new_figure((3.0 * len(table.columns), 3.2), layout="constrained")
axes = fig.subplots(1, len(table.columns))
colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"][: len(table)]
for ax, column in zip(axes, table.columns):
    values = table[column].astype(float).fillna(0.0)
    ax.bar(range(len(values)), values, color=colors)
    ax.set_xticks(range(len(values)), table.index, rotation=35, ha="right", fontsize=8)
    ax.set_title(column, fontsize=10)
    if column == "final loss":
        ax.set_yscale("symlog")
fig.suptitle(
    f"variants after {BASE_TRAIN.steps} training steps each (same seed)"
    + (" - SMOKE MODE, numbers meaningless" if SMOKE else "")
)
show(fig)

# %% [markdown]
# ## Reading the table
#
# * `no rejection`: with rejection off, nothing stops a proposal from re-explaining an object a
#   tracker already holds. Look for a lower `propagated fraction` and more discoveries per frame
#   after t = 0 than the baseline: objects get rediscovered instead of tracked.
# * `fixed transition prior`: tracking itself uses the guide, so the metrics may change little;
#   the learned transition matters most for generation (notebook 03).
# * `no discovery dropout`: compare the number of discoveries after t = 0 and the propagated
#   fraction with the baseline.
#
# The numbers are what this run measured, for this budget; short runs are noisy, so compare
# differences that are large next to the run-to-run spread (retrain with another
# `TrainConfig.seed` to see it).
