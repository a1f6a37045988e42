"""The set-up shared by the example notebooks (``notebooks/*.py``).

Example (the first cells of a notebook)::

    from pyro_scalor.notebook import main_job_scalor, notebook_settings, show
    SETTINGS = notebook_settings()     # PYRO_SCALOR_SMOKE=1: tiny sizes, temporary folders
    print(SETTINGS.describe())
    scalor, history, preset = main_job_scalor(SETTINGS, report=print)
    show(some_matplotlib_figure)

Full mode uses the main job's run, ``runs/cpu-default`` (what ``python3 -m pyro_scalor main``
or ``pyro-scalor train --preset cpu-default`` writes); smoke mode trains the ``smoke`` preset
for 2 steps in a temporary folder, so that nothing is written into the repository.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.train.checkpoint import load_checkpoint
from pyro_scalor.train.config import RunPreset, get_run_preset

__all__ = [
    "MAIN_JOB_PRESET",
    "SMOKE_STEPS",
    "NotebookSettings",
    "find_root",
    "main_job_run_dir",
    "main_job_scalor",
    "notebook_settings",
    "show",
]

logger = logging.getLogger(__name__)

#: The run preset of the main job, which the notebooks load (or train) in full mode.
MAIN_JOB_PRESET = "cpu-default"
#: Training steps of the ``smoke`` preset in smoke mode: enough for every cell to run.
SMOKE_STEPS = 2


@dataclass(frozen=True)
class NotebookSettings:
    """Where a notebook reads and writes, and on what it runs.

    ``smoke``: tiny sizes and temporary folders (``PYRO_SCALOR_SMOKE``); ``root``: the repository;
    ``work``: the folder for pictures and smoke-mode runs; ``cache``: the data cache to pass as
    ``cache_dir`` (None: ``$PYRO_SCALOR_CACHE`` or ``~/.cache/pyro-scalor``); ``device``.
    """

    smoke: bool
    root: Path
    work: Path
    cache: Path | None
    device: str

    def describe(self) -> str:
        """One line for the notebook to print."""
        return (
            f"smoke mode: {self.smoke}; repository: {self.root}; outputs: {self.work}; "
            f"device: {self.device}"
        )


def find_root() -> Path:
    """The repository root (where pyproject.toml is): above the working directory (the root or
    notebooks/), else above the (editable) package, else the working directory."""
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for path in (start, *start.parents):
            if (path / "pyproject.toml").is_file() and (path / "pyro_scalor").is_dir():
                return path
    return Path.cwd()


def notebook_settings(environ: Mapping[str, str] | None = None) -> NotebookSettings:
    """Settings from the environment (default ``os.environ``), and the process set up for them.

    ``PYRO_SCALOR_SMOKE`` (anything but empty or ``0``) selects smoke mode: a new temporary
    work folder (under ``$TMPDIR``), the data cache ``$PYRO_SCALOR_CACHE`` or one in the work
    folder, and 1 torch thread (a tiny model only loses time to thread start-up). Full mode
    works in ``outputs/notebooks`` of the repository with the default data cache. Either way
    tqdm's warning about missing ipywidgets is silenced.
    """
    env = os.environ if environ is None else environ
    smoke = env.get("PYRO_SCALOR_SMOKE", "0") not in ("", "0")
    root = find_root()
    if smoke:
        work = Path(tempfile.mkdtemp(prefix="pyro-scalor-notebook-"))
        cache = Path(env.get("PYRO_SCALOR_CACHE") or work / "cache")
        torch.set_num_threads(1)
    else:
        work = root / "outputs" / "notebooks"
        cache = None
    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return NotebookSettings(smoke=smoke, root=root, work=work, cache=cache, device=device)


def show(fig, dpi: int = 100) -> None:
    """Display a matplotlib Figure as a PNG in the notebook (the library's figures do not use
    pyplot, so they are not shown by themselves)."""
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    display(Image(buf.getvalue()))


def main_job_run_dir(settings: NotebookSettings) -> Path:
    """The run folder :func:`main_job_scalor` uses: ``runs/cpu-default`` of the repository, or
    ``run`` in the work folder in smoke mode."""
    return settings.work / "run" if settings.smoke else settings.root / "runs" / MAIN_JOB_PRESET


def main_job_scalor(
    settings: NotebookSettings,
    steps: int | None = None,
    *,
    report: Callable[[str], None] | None = None,
) -> tuple[Scalor, list[dict], RunPreset]:
    """The main job's trained model: ``(scalor, history, preset)``.

    Loads :func:`main_job_run_dir`'s ``checkpoint.pt`` when it has been trained to the end,
    else trains it first: in full mode the ``cpu-default`` preset (about 27 minutes on a 2-core
    CPU), resuming an unfinished run; in smoke mode the ``smoke`` preset for
    :data:`SMOKE_STEPS` steps. ``steps`` replaces the preset's number of steps. ``preset`` is
    the run preset with the training config used (``preset.train.data_preset`` is the data the
    model was trained on); ``history`` the checkpoint's logged training records. What happens is
    passed to ``report`` (a notebook gives ``print``), else logged.
    """
    say = report if report is not None else logger.info
    name = "smoke" if settings.smoke else MAIN_JOB_PRESET
    preset = get_run_preset(name)
    if steps is None and settings.smoke:
        steps = SMOKE_STEPS
    if steps is not None:
        preset = dataclasses.replace(preset, train=preset.train.replace(steps=steps))
    train = preset.train
    run_dir = main_job_run_dir(settings)
    ckpt = run_dir / "checkpoint.pt"

    if ckpt.exists() and load_checkpoint(ckpt)["step"] >= train.steps:
        say(f"loading the trained model from {ckpt}")
        scalor = Scalor.from_checkpoint(ckpt, device=settings.device)
    else:
        say(
            f"training preset {name} for {train.steps} steps in {run_dir}"
            + ("" if settings.smoke else " (about 27 minutes on a 2-core CPU)")
        )
        train_set = load_dataset(
            train.data_preset, "train", num_sequences=train.num_train, cache_dir=settings.cache
        )
        scalor = Scalor(
            preset.model, device=settings.device, seed=train.seed, tracking=preset.tracking
        )
        summary = scalor.fit(
            train,
            run_dir,
            dataset=train_set,
            resume=ckpt.exists(),
            progress=not settings.smoke,
            tensorboard=not settings.smoke,
        )
        say(json.dumps(summary, indent=1))
    history = load_checkpoint(ckpt)["history"]
    say(f"model at step {history[-1]['step']}; data preset {train.data_preset}")
    return scalor, history, preset
