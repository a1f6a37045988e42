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
# # Quickstart: train SCALOR, track objects, read the metrics
#
# This notebook trains (or loads) SCALOR on moving dSprites, tracks a test video and scores the
# tracking.
#
# SCALOR (Jiang et al., ICLR 2020) explains a video as a set of objects that are *propagated*
# from frame to frame by tracker RNNs, plus objects newly *discovered* on a grid, over a
# background. Here: build the default data set (procedural moving dSprites, `dsprites-ld`),
# train (or load) the model with `Scalor.fit`, track a test video, look at boxes,
# reconstructions and the background, and score tracking on a few test sequences.
#
# Set `PYRO_SCALOR_SMOKE=1` before starting Jupyter for a run of a few seconds with a tiny model.

# %% [markdown]
# `notebook_settings()` (in `pyro_scalor/notebook.py`, shared by the notebooks) reads
# `PYRO_SCALOR_SMOKE`: smoke mode uses tiny sizes, a temporary work folder and 1 thread, so
# nothing is written into the repository. `show(fig)` displays a matplotlib figure.

# %%
from pyro_scalor.notebook import notebook_settings, show

SETTINGS = notebook_settings()
SMOKE, CACHE = SETTINGS.smoke, SETTINGS.cache  # CACHE None: the default data cache
print(SETTINGS.describe())

# %% [markdown]
# ## Data
#
# Every sequence comes with ground-truth boxes (pixel `x_min, y_min, x_max, y_max`), ids and
# visibility. Splits are generated once and cached.

# %%
from pyro_scalor.data import load_dataset
from pyro_scalor.viz import plot_sequence_grid

data_name = "smoke" if SMOKE else "dsprites-ld"
N_TEST = 2 if SMOKE else 16
test = load_dataset(data_name, "test", num_sequences=N_TEST, cache_dir=CACHE)
item = test[0]
print(
    f"{len(test)} test sequences; video {tuple(item['video'].shape)}, "
    f"boxes {tuple(item['boxes'].shape)}, visible objects per frame "
    f"{item['visible'].sum(-1).tolist()}"
)
show(
    plot_sequence_grid(
        {"boxes": item["video"]},
        boxes=item["boxes"],
        ids=item["ids"],
        valid=item["visible"],
        title="a test sequence with its ground-truth boxes",
    )
)

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
from pyro_scalor.viz import new_figure

fig = new_figure((5, 3), layout="constrained")
ax = fig.add_subplot()
losses = [h["train_loss"] for h in history]
ax.plot([h["step"] for h in history], losses, ".-")
ax.set_xlabel("step")
ax.set_ylabel("negative ELBO per sequence")
if min(losses) > 0 and max(losses) > 100 * min(losses):
    ax.set_yscale("log")
ax.set_title("training loss")
show(fig)

# %% [markdown]
# ## Track a test video
#
# `Scalor.track` runs the guide with posterior modes and returns boxes, track ids, presence,
# whether each object was discovered at that frame or propagated, the reconstruction and the
# background.

# %%
video = test.videos([0])  # (B, T, 3, 64, 64) in [0, 1]
result = scalor.track(video).to("cpu")
print("boxes", tuple(result.boxes.shape), "ids", tuple(result.ids.shape))
print("present objects per frame:  ", result.valid[0].sum(-1).tolist())
print("propagated per frame:       ", result.num_propagated[0].int().tolist())
print("newly discovered per frame: ", result.num_discovered[0].int().tolist())
print("rejected proposals per frame:", result.num_rejected[0].int().tolist())

# %%
show(
    plot_sequence_grid(
        {
            "original": video[0],
            "reconstruction": result.reconstruction[0],
            "background": result.background[0],
            "boxes": video[0],
        },
        boxes=result.boxes[0],
        ids=result.ids[0],
        valid=result.valid[0],
        discovered=result.discovered[0],
        title="tracking: box colour = track id, white dot = discovered at that frame",
    )
)

# %%
# The objects of the first frame: box, track id, presence, depth
import pandas as pd

t = 0
keep = result.valid[0, t]
pd.DataFrame(
    {
        "id": result.ids[0, t][keep].numpy(),
        "x_min": result.boxes[0, t, :, 0][keep].numpy(),
        "y_min": result.boxes[0, t, :, 1][keep].numpy(),
        "x_max": result.boxes[0, t, :, 2][keep].numpy(),
        "y_max": result.boxes[0, t, :, 3][keep].numpy(),
        "presence": result.presence[0, t][keep].numpy(),
        "depth": result.depth[0, t][keep].numpy(),
    }
).round(2)

# %% [markdown]
# ## Tracking metrics on a few test sequences
#
# MOTA, MOTP, IDF1, precision, recall and the count error as in the paper's Table 1 (IoU >= 0.5
# matching), plus the fraction of matched objects explained by propagation rather than
# rediscovery. Notebook 04 compares them with the paper.

# %%
from pyro_scalor.eval.tracking import evaluate, format_table

metrics, _ = evaluate(scalor, DATA, "test", num_sequences=N_TEST, cache_dir=CACHE, progress=False)
print(format_table(metrics))

# %% [markdown]
# Next: `02_priors_and_guide_variants` (swap priors and guide parts and measure the effect),
# `03_generation` (imagine the future), `04_evaluation` (the full evaluation). The same jobs
# exist on the command line: `pyro-scalor train`, `evaluate`, `generate`, `main`.
