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

# %% [markdown]
# `notebook_settings()` (in `pyro_scalor/notebook.py`, shared by the notebooks) reads
# `PYRO_SCALOR_SMOKE`: smoke mode uses tiny sizes, a temporary work folder and 1 thread, so
# nothing is written into the repository. `show(fig)` displays a matplotlib figure.

# %%
import numpy as np
import torch

from pyro_scalor.notebook import notebook_settings, show

SETTINGS = notebook_settings()
SMOKE, CACHE = SETTINGS.smoke, SETTINGS.cache  # CACHE None: the default data cache
print(SETTINGS.describe())

# %% [markdown]
# ## The trained model
#
# Full mode uses the CPU default run, `runs/cpu-default/checkpoint.pt` (what
# `python3 -m pyro_scalor main` or `pyro-scalor train --preset cpu-default` writes). **If it
# does not exist (or is unfinished), this cell trains the `cpu-default` preset, which takes
# about 30 minutes on a 2-core CPU**; an interrupted run resumes from its checkpoint next time.
# Smoke mode trains the tiny model for 2 steps in a temporary folder (the results are
# meaningless, but every cell runs the same code). `main_job_scalor` does this and returns
# the model, its training history and the run preset.

# %%
from pyro_scalor.notebook import main_job_scalor

scalor, history, PRESET = main_job_scalor(SETTINGS, report=print)
DATA = PRESET.train.data_preset  # dsprites-ld (8 frames) in full mode, smoke (4) in smoke mode

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
from pyro_scalor.data import load_dataset

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
