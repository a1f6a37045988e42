"""Write the example notebooks from the cell sources below (no outputs, stable cell ids).

    python notebooks/make_notebooks.py           # (re)write notebooks/*.ipynb
    python notebooks/make_notebooks.py --check   # exit 1 if a notebook differs from this file

Edit the notebooks here, not in Jupyter, so that they stay reviewable and reproducible. Each
notebook runs top to bottom; with ``PYRO_SCALOR_SMOKE=1`` it uses tiny sizes (the tests run it
that way), otherwise full size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

# --------------------------------------------------------------------------------------------
# shared cells
# --------------------------------------------------------------------------------------------
SETUP = '''\
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


def hwc(frames) -> np.ndarray:
    """(T, C, H, W) tensor -> (T, H, W, C) numpy in [0, 1], for the picture helpers."""
    return frames.detach().cpu().permute(0, 2, 3, 1).clamp(0, 1).numpy()


print(f"smoke mode: {SMOKE}; repository: {ROOT}; outputs: {WORK}; device: {DEVICE}")
'''

LOAD_OR_TRAIN_MD = """\
## The trained model

Full mode uses the CPU default run, `runs/cpu-default/checkpoint.pt` (what
`python3 -m pyro_scalor main` or `pyro-scalor train --preset cpu-default` writes). **If it does
not exist (or is unfinished), this cell trains the `cpu-default` preset, which takes about 30
minutes on a 2-core CPU**; an interrupted run resumes from its checkpoint next time. Smoke mode
trains the tiny model for 2 steps in a temporary folder (the results are meaningless, but every
cell runs the same code).
"""

LOAD_OR_TRAIN = """\
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
    print(f"training preset {'smoke' if SMOKE else 'cpu-default'} for {TRAIN.steps} steps "
          f"in {RUN_DIR}" + ("" if SMOKE else " (about 30 minutes on a 2-core CPU)"))
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
"""


def notebook_quickstart() -> list:
    return [
        new_markdown_cell("""\
# Quickstart: train SCALOR, track objects, read the metrics

SCALOR (Jiang et al., ICLR 2020) explains a video as a set of objects that are *propagated* from
frame to frame by tracker RNNs, plus objects newly *discovered* on a grid, over a background.
Here: build the default data set (procedural moving dSprites, `dsprites-ld`), train (or load) the
model with `Scalor.fit`, track a test video, look at boxes, reconstructions and the background,
and score tracking on a few test sequences.

Set `PYRO_SCALOR_SMOKE=1` before starting Jupyter for a run of a few seconds with a tiny model.
"""),
        new_code_cell(SETUP),
        new_markdown_cell("""\
## Data

Every sequence comes with ground-truth boxes (pixel `x_min, y_min, x_max, y_max`), ids and
visibility. Splits are generated once and cached.
"""),
        new_code_cell("""\
from pyro_scalor.data import load_dataset
from pyro_scalor.viz import plot_sequence_grid

data_name = "smoke" if SMOKE else "dsprites-ld"
N_TEST = 2 if SMOKE else 16
test = load_dataset(data_name, "test", num_sequences=N_TEST, cache_dir=CACHE)
item = test[0]
print(f"{len(test)} test sequences; video {tuple(item['video'].shape)}, "
      f"boxes {tuple(item['boxes'].shape)}, visible objects per frame "
      f"{item['visible'].sum(-1).tolist()}")
show(plot_sequence_grid(
    {"boxes": hwc(item["video"])},
    boxes=item["boxes"].numpy(),
    ids=item["ids"].numpy(),
    valid=item["visible"].numpy(),
    title="a test sequence with its ground-truth boxes",
))
"""),
        new_markdown_cell(LOAD_OR_TRAIN_MD),
        new_code_cell(LOAD_OR_TRAIN),
        new_code_cell("""\
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
"""),
        new_markdown_cell("""\
## Track a test video

`Scalor.track` runs the guide with posterior modes and returns boxes, track ids, presence,
whether each object was discovered at that frame or propagated, the reconstruction and the
background.
"""),
        new_code_cell("""\
video = test.videos([0])  # (B, T, 3, 64, 64) in [0, 1]
result = scalor.track(video).to("cpu")
print("boxes", tuple(result.boxes.shape), "ids", tuple(result.ids.shape))
print("present objects per frame:  ", result.valid[0].sum(-1).tolist())
print("propagated per frame:       ", result.num_propagated[0].int().tolist())
print("newly discovered per frame: ", result.num_discovered[0].int().tolist())
print("rejected proposals per frame:", result.num_rejected[0].int().tolist())
"""),
        new_code_cell("""\
show(plot_sequence_grid(
    {
        "original": hwc(video[0]),
        "reconstruction": hwc(result.reconstruction[0]),
        "background": hwc(result.background[0]),
        "boxes": hwc(video[0]),
    },
    boxes=result.boxes[0].numpy(),
    ids=result.ids[0].numpy(),
    valid=result.valid[0].numpy(),
    discovered=result.discovered[0].numpy(),
    title="tracking: box colour = track id, white dot = discovered at that frame",
))
"""),
        new_code_cell("""\
# The objects of the first frame: box, track id, presence, depth
import pandas as pd

t = 0
keep = result.valid[0, t]
pd.DataFrame({
    "id": result.ids[0, t][keep].numpy(),
    "x_min": result.boxes[0, t, :, 0][keep].numpy(),
    "y_min": result.boxes[0, t, :, 1][keep].numpy(),
    "x_max": result.boxes[0, t, :, 2][keep].numpy(),
    "y_max": result.boxes[0, t, :, 3][keep].numpy(),
    "presence": result.presence[0, t][keep].numpy(),
    "depth": result.depth[0, t][keep].numpy(),
}).round(2)
"""),
        new_markdown_cell("""\
## Tracking metrics on a few test sequences

MOTA, MOTP, IDF1, precision, recall and the count error as in the paper's Table 1 (IoU >= 0.5
matching), plus the fraction of matched objects explained by propagation rather than
rediscovery. Notebook 04 compares them with the paper.
"""),
        new_code_cell("""\
from pyro_scalor.evaluation import evaluate, format_table

metrics, _ = evaluate(scalor, DATA, "test", num_sequences=N_TEST, cache_dir=CACHE,
                      progress=False)
print(format_table(metrics))
"""),
        new_markdown_cell("""\
Next: `02_priors_and_guide_variants.ipynb` (swap priors and guide parts and measure the effect),
`03_generation.ipynb` (imagine the future), `04_evaluation.ipynb` (the full evaluation). The same
jobs exist on the command line: `pyro-scalor train`, `evaluate`, `generate`, `main`.
"""),
    ]


def notebook_variants() -> list:
    return [
        new_markdown_cell("""\
# Swapping priors and guide variants

Every swappable part is a field of `ModelConfig` (model and guide) or `TrainConfig` (training),
so a variant is a `config.replace(...)`. We train the same data under four variants with the
same budget and seed and **measure** the difference:

* **baseline**: the CPU default.
* **no rejection** (`ModelConfig.rejection=False, inference_suppression=False`): proposals
  overlapping propagated objects (or each other) are kept, in training and in tracking.
  Expect more rediscovery, duplicate boxes and trackers that give up (propagation collapse).
* **fixed transition prior** (`transition_prior="fixed"`): propagated `what`/`where`/`depth`
  get a standard-normal prior instead of the learned GRU transition, so movement is not
  predicted.
* **no discovery dropout** (`TrainConfig.discovery_dropout=0`): discovery is never switched
  off during training, so it can take over what the trackers should explain.

Measured for each: MOTA, count MAE, `propagated_fraction` (matched objects, after their first
frame, that were propagated rather than rediscovered), mean number of newly discovered objects
per frame after t = 0 (`TrackingResult.num_discovered`), and the final training loss.

**Budget.** Full mode trains each variant for 400 steps (set `PYRO_SCALOR_VARIANT_STEPS` to
change it) on 2000 training sequences, with the schedules compressed to that length and the
CPU default's 4-frame training windows: a few minutes per variant on a 2-core CPU. Run
directories live under `runs/notebook-variants/`, so a rerun loads finished variants instead of
training them again. In smoke mode each variant trains the tiny model for 2 steps: the numbers
are meaningless but computed exactly the same way.
"""),
        new_code_cell(SETUP),
        new_code_cell("""\
import pyro

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

VARIANTS = {
    "baseline": (BASE_MODEL, BASE_TRAIN),
    "no rejection": (
        BASE_MODEL.replace(rejection=False, inference_suppression=False), BASE_TRAIN
    ),
    "fixed transition prior": (BASE_MODEL.replace(transition_prior="fixed"), BASE_TRAIN),
    "no discovery dropout": (BASE_MODEL, BASE_TRAIN.replace(discovery_dropout=0.0)),
}
print(f"{len(VARIANTS)} variants x {BASE_TRAIN.steps} steps, batch {BASE_TRAIN.batch_size}, "
      f"seed {BASE_TRAIN.seed}, data {DATA}; evaluated on {N_EVAL} test sequences")
"""),
        new_code_cell("""\
import json
import time

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.train.checkpoint import load_checkpoint

train_set = load_dataset(DATA, "train", num_sequences=BASE_TRAIN.num_train, cache_dir=CACHE)
models = {}
final_loss = {}
for name, (model_cfg, train_cfg) in VARIANTS.items():
    run_dir = RUNS / name.replace(" ", "-")
    ckpt = run_dir / "checkpoint.pt"
    summary_file = run_dir / "summary.json"
    pyro.clear_param_store()
    if ckpt.exists() and summary_file.exists() and load_checkpoint(ckpt)["step"] >= train_cfg.steps:
        scalor = Scalor.from_checkpoint(ckpt, device=DEVICE)
        summary = json.loads(summary_file.read_text())
        print(f"{name}: loaded {ckpt}")
    else:
        start = time.perf_counter()
        scalor = Scalor(model_cfg, device=DEVICE, seed=train_cfg.seed)  # same seed for all
        summary = scalor.fit(train_cfg, run_dir, dataset=train_set, resume=ckpt.exists(),
                             progress=not SMOKE, tensorboard=not SMOKE)
        summary_file.write_text(json.dumps(summary))
        print(f"{name}: trained {summary['steps']} steps in {time.perf_counter() - start:.0f} s")
    models[name] = scalor
    final_loss[name] = summary["loss_ema"]  # moving average of the per-sequence loss
"""),
        new_markdown_cell("""\
## Measure

Each variant tracks the same test sequences with posterior modes.
"""),
        new_code_cell("""\
import pandas as pd

from pyro_scalor.evaluation import evaluate

rows = []
for name, scalor in models.items():
    metrics, example = evaluate(scalor, DATA, "test", num_sequences=N_EVAL,
                                batch_size=N_EVAL, cache_dir=CACHE, progress=False)
    res = example["result"]  # all N_EVAL sequences (batch_size=N_EVAL), on the CPU
    rows.append({
        "variant": name,
        "MOTA": metrics["mota"],
        "count MAE": metrics["count_mae"],
        "propagated fraction": metrics["propagated_fraction"],
        "discovered / frame (t>0)": float(res.num_discovered[:, 1:].float().mean()),
        "final loss": final_loss[name],
    })
table = pd.DataFrame(rows).set_index("variant")
table.round(3)
"""),
        new_code_cell("""\
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
fig.suptitle(f"variants after {BASE_TRAIN.steps} training steps each (same seed)"
             + (" - SMOKE MODE, numbers meaningless" if SMOKE else ""))
show(fig)
"""),
        new_markdown_cell("""\
## Reading the table

* `no rejection`: with rejection off, nothing stops a proposal from re-explaining an object a
  tracker already holds. Look for a lower `propagated fraction` and more discoveries per frame
  after t = 0 than the baseline: objects get rediscovered instead of tracked.
* `fixed transition prior`: tracking itself uses the guide, so the metrics may change little;
  the learned transition matters most for generation (notebook 03).
* `no discovery dropout`: compare the number of discoveries after t = 0 and the propagated
  fraction with the baseline.

The numbers are what this run measured, for this budget; short runs are noisy, so compare
differences that are large next to the run-to-run spread (retrain with another
`TrainConfig.seed` to see it).
"""),
    ]


def notebook_generation() -> list:
    return [
        new_markdown_cell("""\
# Prior sampling and conditional generation

SCALOR is a generative model: it can sample whole videos from its priors, and it can *continue*
a video. In conditional generation (the paper's Fig. 6) the guide infers the objects of the
first 5 frames, then the model imagines 5 more with its learned transition priors; the
discovery presence prior is raised to 0.1 (Appendix C) so that new objects may appear.

The pictures show, per frame: the generated scene, the background, the segmentation by object
(colour = track id), the trajectories so far, and the boxes; imagined frames have a red margin.
In full mode the continuation uses `dsprites-ld-long` (16-frame sequences), so that real frames
exist to compare the 5 imagined ones with.
"""),
        new_code_cell(SETUP),
        new_markdown_cell(LOAD_OR_TRAIN_MD),
        new_code_cell(LOAD_OR_TRAIN),
        new_markdown_cell("""\
## Samples from the prior

Objects and background from the priors at t = 0, then propagation and discovery (presence
prior 0.1) at every frame: every frame is imagined.
"""),
        new_code_cell("""\
from pyro_scalor.generation import generation_rows, prior_summary
from pyro_scalor.viz import plot_sequence_grid

prior = scalor.sample_prior(2, 4 if SMOKE else 10, disc_pres_prior=0.1, seed=0)
print(prior_summary(prior))
frames = list(range(prior.frames.shape[1]))
show(plot_sequence_grid(
    generation_rows(prior, 0),
    boxes=prior.boxes[0].cpu().numpy(),
    ids=prior.ids[0].cpu().numpy(),
    valid=prior.valid[0].cpu().numpy(),
    discovered=prior.discovered[0].cpu().numpy(),
    title="a prior sample (all frames imagined)",
    margin_frames=frames,
    margin_label="imagined",
))
"""),
        new_markdown_cell("""\
## Conditional generation: observe, then imagine

`run_conditional` calls `Scalor.generate` (the guide's posterior on the observed frames via
`poutine.trace`, then `poutine.replay` of the model for the continuation) on test sequences and
scores the imagined frames against the real ones; `write_generation_pictures` draws them (the
same code as `pyro-scalor generate`).
"""),
        new_code_cell("""\
from pyro_scalor.generation import run_conditional, write_generation_pictures

GEN_DATA = "smoke" if SMOKE else "dsprites-ld-long"
OBSERVE, HORIZON = (2, 2) if SMOKE else (5, 5)
N_SEQ = 2 if SMOKE else 64
gen_test = load_dataset(GEN_DATA, "test", num_sequences=N_SEQ, cache_dir=CACHE)
errors, example = run_conditional(scalor, gen_test, OBSERVE, HORIZON, N_SEQ, seed=0)
paths = write_generation_pictures(example["result"], WORK / "generation", real=example["real"],
                                  max_sequences=1, prefix="conditional")
for path in paths:
    if path.suffix == ".png":
        display(Image(filename=str(path)))
print("GIF:", [str(p) for p in paths if p.suffix == ".gif"])
"""),
        new_markdown_cell("""\
## How far ahead does it stay right?

For objects tracked at the last observed frame and matched to a true object there (IoU >= 0.5),
the pixel distance between the imagined box centre (same track id) and the true centre at each
imagined step, next to a baseline that leaves each object where it last was; and the pixel MSE
of each imagined frame against the real one, next to repeating the last observed frame.
"""),
        new_code_cell("""\
import pandas as pd

from pyro_scalor.generation import format_horizon_table

print(format_horizon_table(errors))
columns = ["step", "frame", "center_error_px", "static_center_error_px", "center_count",
           "tracks_lost", "pixel_mse", "copy_last_pixel_mse"]
pd.DataFrame({k: errors[k] for k in columns}).set_index("step").round(4)
"""),
        new_code_cell("""\
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
fig.suptitle(f"{GEN_DATA}: observe {OBSERVE}, imagine {HORIZON}, {errors['num_sequences']} "
             "sequences" + (" - SMOKE MODE" if SMOKE else ""))
show(fig)
"""),
        new_markdown_cell("""\
## Sampling noise and the discovery prior

`Scalor.generate(..., noise_scale=s)` multiplies the standard deviation of every Gaussian latent
sampled in the imagined frames (a Pyro effect handler, `pyro_scalor.model.handlers.NoiseScale`):
1 samples the model exactly, 0 follows the transition priors' means. A short model drifts in
appearance when sampled at full noise; the table measures what less noise and a lower discovery
prior do to the same horizon errors (same sequences, same seed).
"""),
        new_code_cell("""\
rows = []
for noise, rho in ((1.0, 0.1), (0.5, 0.1), (0.0, 0.1), (1.0, 1e-3), (0.0, 1e-3)):
    err, _ = run_conditional(scalor, gen_test, OBSERVE, HORIZON, N_SEQ, seed=0,
                             noise_scale=noise, disc_pres_prior=rho)
    rows.append({"noise_scale": noise, "disc_pres_prior": rho,
                 **{f"centre px @{k}": round(v, 2)
                    for k, v in zip(err["step"], err["center_error_px"])},
                 **{f"MSE @{k}": round(v, 4) for k, v in zip(err["step"], err["pixel_mse"])}})
pd.DataFrame(rows)
"""),
        new_markdown_cell("""\
The same from the command line (pictures, and the numbers as JSON):

```bash
pyro-scalor generate runs/cpu-default --prior --frames 10 --out outputs/generation
pyro-scalor generate runs/cpu-default --observe 5 --horizon 5 --preset dsprites-ld-long \\
    --out outputs/generation --json outputs/generation/horizon.json
```
"""),
    ]


def notebook_evaluation() -> list:
    return [
        new_markdown_cell("""\
# Evaluation against the paper's Table 1

Tracking metrics of the trained model on the test split next to the SCALOR paper's Table 1 for
the same setting, and a few diagnostic plots: the count error per frame, the distribution of
presence values, propagated vs discovered objects per frame, and trajectories.
"""),
        new_code_cell(SETUP),
        new_markdown_cell(LOAD_OR_TRAIN_MD),
        new_code_cell(LOAD_OR_TRAIN),
        new_code_cell("""\
from pyro_scalor.evaluation import evaluate
from pyro_scalor.main_job import PAPER_TABLE1, comparison_table

N_EVAL = 2 if SMOKE else 200
metrics, _ = evaluate(scalor, DATA, "test", num_sequences=N_EVAL, cache_dir=CACHE,
                      progress=False)
print(comparison_table(metrics, DATA))
"""),
        new_code_cell("""\
import pandas as pd

paper = PAPER_TABLE1.get(DATA, {})
keys = ["mota", "motp_px", "precision", "recall", "count_mae", "idf1", "propagated_fraction"]
pd.DataFrame({
    "ours": [metrics.get(k) for k in keys],
    f"paper ({DATA})" if paper else "paper (no row for this data)": [paper.get(k) for k in keys],
}, index=keys).round(3)
"""),
        new_code_cell("""\
from pyro_scalor.viz import plot_metrics_table

shown = {k: metrics[k] for k in keys + ["id_switches", "num_sequences"] if k in metrics}
show(plot_metrics_table(shown, title=f"{DATA} test, {metrics['num_sequences']} sequences"))
"""),
        new_markdown_cell("""\
## Where do the errors come from?

Track the same test sequences again (posterior modes, so the same result as `evaluate`) and
look per frame: the object count against the truth, the distribution of slot presences (a
well-trained model pushes them to 0 or 1), and where the present objects come from. "Accepted
proposals" (`TrackingResult.num_discovered`) counts discovery proposals that survived
rejection, before the top-K merge into the fixed number of slots.
"""),
        new_code_cell("""\
test = load_dataset(DATA, "test", num_sequences=N_EVAL, cache_dir=CACHE)
res = scalor.track(test.videos()).to("cpu")
visible = torch.stack([test[i]["visible"] for i in range(len(test))])  # (N, T, O)
pred_count = res.valid.sum(-1).float()  # (N, T)
true_count = visible.sum(-1).float()
rel_error = (pred_count - true_count).abs() / true_count.clamp(min=1)
print("mean relative count error per frame:", rel_error.mean(0).numpy().round(3))
"""),
        new_code_cell("""\
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
"""),
        new_code_cell("""\
from pyro_scalor.viz import plot_trajectories

fig = plot_trajectories(hwc(test.videos([0])[0])[0], res.boxes[0].numpy(), res.ids[0].numpy(),
                        res.valid[0].numpy())
show(fig)
"""),
        new_markdown_cell("""\
`count_mae` is the mean over frames of |#predicted - #true| / #true, `motp_px` the mean centre
distance of matched boxes in pixels (the paper's MOTP), `propagated_fraction` the share of
matched objects after their first frame that were tracked rather than rediscovered. The paper's
numbers come from a much longer GPU training of a larger model (`paper-ld` preset); the CPU
default is trained for about 30 minutes, so expect a gap.
"""),
    ]


NOTEBOOKS = {
    "01_quickstart.ipynb": notebook_quickstart,
    "02_priors_and_guide_variants.ipynb": notebook_variants,
    "03_generation.ipynb": notebook_generation,
    "04_evaluation.ipynb": notebook_evaluation,
}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` with stable cell ids and no outputs."""
    nb = new_notebook(cells=NOTEBOOKS[name]())
    stem = name.split("_")[0]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"nb{stem}-{i:02d}"
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    return nbformat.writes(build(name)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check they are up to date")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        path = HERE / name
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"out of date (run python notebooks/make_notebooks.py): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
