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
# # Evaluation against the paper's Table 1
#
# This notebook scores the trained model's tracking on the test split next to the SCALOR
# paper's Table 1 for the same setting, and shows where the errors come from.
#
# The diagnostic plots: the count error per frame, the distribution of presence values,
# propagated vs discovered objects per frame, and trajectories.

# %%
# Setup. PYRO_SCALOR_SMOKE=1 (what the tests use) switches to tiny sizes and temporary folders.
import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from IPython.display import Image, display

import pyro_scalor

SMOKE = os.environ.get("PYRO_SCALOR_SMOKE", "0") not in ("", "0")
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets


def find_root() -> Path:
    """The repository root (where pyproject.toml is): above the working directory (the root or
    notebooks/), else above the (editable) package, else the working directory."""
    for start in (Path.cwd(), Path(pyro_scalor.__file__).resolve().parent):
        for path in (start, *start.parents):
            if (path / "pyproject.toml").is_file() and (path / "pyro_scalor").is_dir():
                return path
    return Path.cwd()


ROOT = find_root()
if SMOKE:  # nothing is written into the repository
    WORK = Path(tempfile.mkdtemp(prefix="pyro-scalor-notebook-"))
    CACHE = Path(os.environ.get("PYRO_SCALOR_CACHE") or WORK / "cache")
else:
    WORK = ROOT / "outputs" / "notebooks"
    CACHE = None  # the default data cache: $PYRO_SCALOR_CACHE or ~/.cache/pyro-scalor
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if SMOKE:
    torch.set_num_threads(1)  # the tiny model only loses time to thread start-up and contention


def show(fig, dpi: int = 100) -> None:
    """Display a matplotlib Figure (the library's figures do not use pyplot)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    display(Image(buf.getvalue()))


print(f"smoke mode: {SMOKE}; repository: {ROOT}; outputs: {WORK}; device: {DEVICE}")

# %% [markdown]
# ## The trained model
#
# Full mode uses the CPU default run, `runs/cpu-default/checkpoint.pt` (what
# `python3 -m pyro_scalor main` or `pyro-scalor train --preset cpu-default` writes). **If it
# does not exist (or is unfinished), this cell trains the `cpu-default` preset, which takes
# about 30 minutes on a 2-core CPU**; an interrupted run resumes from its checkpoint next time.
# Smoke mode trains the tiny model for 2 steps in a temporary folder (the results are
# meaningless, but every cell runs the same code).

# %%
import json

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.train.checkpoint import load_checkpoint
from pyro_scalor.train.config import get_run_preset

if SMOKE:
    PRESET = get_run_preset("smoke")
    TRAIN = PRESET.train.replace(steps=2)
    RUN_DIR = WORK / "run"
else:
    PRESET = get_run_preset("cpu-default")
    TRAIN = PRESET.train
    RUN_DIR = ROOT / "runs" / "cpu-default"
DATA = TRAIN.data_preset  # dsprites-ld (8 frames) in full mode, smoke (4 frames) in smoke mode
CKPT = RUN_DIR / "checkpoint.pt"

if CKPT.exists() and load_checkpoint(CKPT)["step"] >= TRAIN.steps:
    print(f"loading the trained model from {CKPT}")
    scalor = Scalor.from_checkpoint(CKPT, device=DEVICE)
else:
    print(
        f"training preset {'smoke' if SMOKE else 'cpu-default'} for {TRAIN.steps} steps "
        f"in {RUN_DIR}" + ("" if SMOKE else " (about 30 minutes on a 2-core CPU)")
    )
    train_set = load_dataset(DATA, "train", num_sequences=TRAIN.num_train, cache_dir=CACHE)
    scalor = Scalor(PRESET.model, device=DEVICE, seed=TRAIN.seed)
    summary = scalor.fit(
        TRAIN,
        RUN_DIR,
        dataset=train_set,
        resume=CKPT.exists(),
        progress=not SMOKE,
        tensorboard=not SMOKE,
    )
    print(json.dumps(summary, indent=1))
history = load_checkpoint(CKPT)["history"]
print(f"model at step {history[-1]['step']}; data preset {DATA}")

# %%
from pyro_scalor.eval.tracking import PAPER_TABLE1, comparison_table, evaluate

N_EVAL = 2 if SMOKE else 200
metrics, _ = evaluate(scalor, DATA, "test", num_sequences=N_EVAL, cache_dir=CACHE, progress=False)
print(comparison_table(metrics, DATA))

# %%
import pandas as pd

paper = PAPER_TABLE1.get(DATA, {})
paper_column = f"paper ({DATA})" if paper else "paper (no row for this data)"
keys = ["mota", "motp_px", "precision", "recall", "count_mae", "idf1", "propagated_fraction"]
pd.DataFrame(
    {"ours": [metrics.get(k) for k in keys], paper_column: [paper.get(k) for k in keys]},
    index=keys,
).round(3)

# %%
from pyro_scalor.viz import plot_metrics_table

shown = {k: metrics[k] for k in keys + ["id_switches", "num_sequences"] if k in metrics}
show(plot_metrics_table(shown, title=f"{DATA} test, {metrics['num_sequences']} sequences"))

# %% [markdown]
# ## Where do the errors come from?
#
# Track the same test sequences again (posterior modes, so the same result as `evaluate`) and
# look per frame: the object count against the truth, the distribution of slot presences (a
# well-trained model pushes them to 0 or 1), and where the present objects come from.
# "Accepted proposals" (`TrackingResult.num_discovered`) counts discovery proposals that
# survived rejection, before the top-K merge into the fixed number of slots.

# %%
test = load_dataset(DATA, "test", num_sequences=N_EVAL, cache_dir=CACHE)
res = scalor.track(test.videos()).to("cpu")
visible = torch.stack([test[i]["visible"] for i in range(len(test))])  # (N, T, O)
pred_count = res.valid.sum(-1).float()  # (N, T)
true_count = visible.sum(-1).float()
rel_error = (pred_count - true_count).abs() / true_count.clamp(min=1)
print("mean relative count error per frame:", rel_error.mean(0).numpy().round(3))

# %%
from pyro_scalor.viz import new_figure

frames = np.arange(pred_count.shape[1])
fig = new_figure((13, 3.2), layout="constrained")
ax1, ax2, ax3 = fig.subplots(1, 3)
ax1b = ax1.twinx()
ax1b.bar(frames, rel_error.mean(0), alpha=0.25, color="C3", label="|pred - true| / true")
ax1.set_zorder(ax1b.get_zorder() + 1)  # the lines above the bars
ax1.patch.set_visible(False)
ax1.plot(frames, true_count.mean(0), "s--", label="true objects")
ax1.plot(frames, pred_count.mean(0), "o-", label="predicted (presence > 0.5)")
ax1.set_xlabel("frame")
ax1.set_ylabel("objects per frame")
ax1b.set_ylabel("relative count error")
ax1.legend(fontsize=8, loc="lower left")
ax1.set_title("count per frame")
ax2.hist(res.presence.flatten().numpy(), bins=20, range=(0, 1), color="C0")
ax2.set_yscale("log")
ax2.set_xlabel("presence of a slot")
ax2.set_title("presence values (all slots, frames)")
kept_prop = (res.valid & ~res.discovered).sum(-1).float().mean(0)
kept_disc = (res.valid & res.discovered).sum(-1).float().mean(0)
ax3.bar(frames, kept_prop, label="present, propagated")
ax3.bar(frames, kept_disc, bottom=kept_prop, label="present, discovered at t")
ax3.plot(frames, res.num_discovered.mean(0), "C2o-", label="accepted proposals")
ax3.plot(frames, res.num_rejected.mean(0), "k.--", label="rejected proposals")
ax3.set_xlabel("frame")
ax3.set_title("objects per frame by origin")
ax3.legend(fontsize=8)
fig.suptitle(f"{DATA} test, {len(test)} sequences" + (" - SMOKE MODE" if SMOKE else ""))
show(fig)

# %%
from pyro_scalor.viz import plot_trajectories

first_frame = test.videos([0])[0, 0]  # (3, H, W)
show(plot_trajectories(first_frame, res.boxes[0], res.ids[0], res.valid[0]))

# %% [markdown]
# `count_mae` is the mean over frames of |#predicted - #true| / #true, `motp_px` the mean centre
# distance of matched boxes in pixels (the paper's MOTP), `propagated_fraction` the share of
# matched objects after their first frame that were tracked rather than rediscovered. The
# paper's numbers come from a much longer GPU training of a larger model (`paper-ld` preset);
# the CPU default is trained for about 30 minutes, so expect a gap.
