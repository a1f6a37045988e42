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
# # Prior sampling and conditional generation
#
# This notebook samples videos from SCALOR's priors and continues test videos into the future,
# then measures how far ahead the imagined frames stay right.
#
# SCALOR is a generative model: it can sample whole videos from its priors, and it can
# *continue* a video. In conditional generation (the paper's Fig. 6) the guide infers the
# objects of the first 5 frames, then the model imagines 5 more with its learned transition
# priors; the discovery presence prior is raised to 0.1 (Appendix C) so that new objects may
# appear.
#
# The pictures show, per frame: the generated scene, the background, the segmentation by object
# (colour = track id), the trajectories so far, and the boxes; imagined frames have a red
# margin. In full mode the continuation uses `dsprites-ld-long` (16-frame sequences), so that
# real frames exist to compare the 5 imagined ones with.

# %% [markdown]
# `notebook_settings()` (in `pyro_scalor/notebook.py`, shared by the notebooks) reads
# `PYRO_SCALOR_SMOKE`: smoke mode uses tiny sizes, a temporary work folder and 1 thread, so
# nothing is written into the repository. `show(fig)` displays a matplotlib figure.

# %%
from pyro_scalor.notebook import notebook_settings, show

SETTINGS = notebook_settings()
SMOKE, WORK, CACHE = SETTINGS.smoke, SETTINGS.work, SETTINGS.cache
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

# %% [markdown]
# ## Samples from the prior
#
# Objects and background from the priors at t = 0, then propagation and discovery (presence
# prior 0.1) at every frame: every frame is imagined.

# %%
from pyro_scalor.eval.horizon import prior_summary
from pyro_scalor.viz import plot_sequence_grid
from pyro_scalor.viz.generation import generation_rows

prior = scalor.sample_prior(2, 4 if SMOKE else 10, disc_pres_prior=0.1, seed=0)
print(prior_summary(prior))
frames = list(range(prior.frames.shape[1]))
show(
    plot_sequence_grid(
        generation_rows(prior, 0),
        boxes=prior.boxes[0],
        ids=prior.ids[0],
        valid=prior.valid[0],
        discovered=prior.discovered[0],
        title="a prior sample (all frames imagined)",
        margin_frames=frames,
        margin_label="imagined",
    )
)

# %% [markdown]
# ## Conditional generation: observe, then imagine
#
# `run_conditional` calls `Scalor.generate` (the guide's posterior on the observed frames via
# `poutine.trace`, then `poutine.replay` of the model for the continuation) on test sequences
# and scores the imagined frames against the real ones; `write_generation_pictures` draws them
# (the same code as `pyro-scalor generate`).

# %%
from IPython.display import Image, display

from pyro_scalor.data import load_dataset
from pyro_scalor.eval.horizon import run_conditional
from pyro_scalor.viz.generation import write_generation_pictures

GEN_DATA = "smoke" if SMOKE else "dsprites-ld-long"
OBSERVE, HORIZON = (2, 2) if SMOKE else (5, 5)
N_SEQ = 2 if SMOKE else 64
gen_test = load_dataset(GEN_DATA, "test", num_sequences=N_SEQ, cache_dir=CACHE)
errors, example = run_conditional(scalor, gen_test, OBSERVE, HORIZON, N_SEQ, seed=0)
paths = write_generation_pictures(
    example["result"],
    WORK / "generation",
    real=example["real"],
    max_sequences=1,
    prefix="conditional",
)
for path in paths:
    if path.suffix == ".png":
        display(Image(filename=str(path)))
print("GIF:", [str(p) for p in paths if p.suffix == ".gif"])

# %% [markdown]
# ## How far ahead does it stay right?
#
# For objects tracked at the last observed frame and matched to a true object there
# (IoU >= 0.5), the pixel distance between the imagined box centre (same track id) and the true
# centre at each imagined step, next to a baseline that leaves each object where it last was;
# and the pixel MSE of each imagined frame against the real one, next to repeating the last
# observed frame.

# %%
import pandas as pd

from pyro_scalor.eval.horizon import format_horizon_table

print(format_horizon_table(errors))
columns = [
    "step",
    "frame",
    "center_error_px",
    "static_center_error_px",
    "center_count",
    "tracks_lost",
    "pixel_mse",
    "copy_last_pixel_mse",
]
pd.DataFrame({k: errors[k] for k in columns}).set_index("step").round(4)

# %%
from pyro_scalor.viz import new_figure

fig = new_figure((9, 3.2), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
steps = errors["step"]
ax1.set_xticks(steps)
ax2.set_xticks(steps)
ax1.plot(steps, errors["center_error_px"], "o-", label="SCALOR (imagined)")
ax1.plot(steps, errors["static_center_error_px"], "s--", label="object stands still")
ax1.set_xlabel("imagined step")
ax1.set_ylabel("centre error (pixels)")
ax1.legend(fontsize=8)
ax2.plot(steps, errors["pixel_mse"], "o-", label="SCALOR (imagined)")
ax2.plot(steps, errors["copy_last_pixel_mse"], "s--", label="last observed frame")
ax2.set_xlabel("imagined step")
ax2.set_ylabel("pixel MSE")
ax2.legend(fontsize=8)
fig.suptitle(
    f"{GEN_DATA}: observe {OBSERVE}, imagine {HORIZON}, {errors['num_sequences']} "
    "sequences" + (" - SMOKE MODE" if SMOKE else "")
)
show(fig)

# %% [markdown]
# ## Sampling noise and the discovery prior
#
# `Scalor.generate(..., noise_scale=s)` multiplies the standard deviation of every Gaussian
# latent sampled in the imagined frames (a Pyro effect handler,
# `pyro_scalor.model.handlers.NoiseScale`): 1 samples the model exactly, 0 follows the
# transition priors' means. A short model drifts in appearance when sampled at full noise; the
# table measures what less noise and a lower discovery prior do to the same horizon errors
# (same sequences, same seed).

# %%
rows = []
for noise, rho in ((1.0, 0.1), (0.5, 0.1), (0.0, 0.1), (1.0, 1e-3), (0.0, 1e-3)):
    err, _ = run_conditional(
        scalor, gen_test, OBSERVE, HORIZON, N_SEQ, seed=0, noise_scale=noise, disc_pres_prior=rho
    )
    centre = {f"centre px @{k}": round(v, 2) for k, v in zip(err["step"], err["center_error_px"])}
    mse = {f"MSE @{k}": round(v, 4) for k, v in zip(err["step"], err["pixel_mse"])}
    rows.append({"noise_scale": noise, "disc_pres_prior": rho, **centre, **mse})
pd.DataFrame(rows)

# %% [markdown]
# The same from the command line (pictures, and the numbers as JSON):
#
# ```bash
# pyro-scalor generate runs/cpu-default --prior --frames 10 --out outputs/generation
# pyro-scalor generate runs/cpu-default --observe 5 --horizon 5 --preset dsprites-ld-long \
#     --out outputs/generation --json outputs/generation/horizon.json
# ```
