"""The notebooks' shared set-up (pyro_scalor.notebook): settings, show(), the main-job model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pyro_scalor import notebook
from pyro_scalor.notebook import (
    NotebookSettings,
    find_root,
    main_job_run_dir,
    main_job_scalor,
    notebook_settings,
    show,
)
from pyro_scalor.viz import new_figure

ROOT = Path(__file__).resolve().parents[1]


def repository_files() -> set[Path]:
    """The repository's top level and everything under the folders a notebook could write to."""
    files = set(ROOT.iterdir())
    for folder in ("runs", "outputs", "notebooks"):
        files |= set((ROOT / folder).rglob("*"))
    return files


@pytest.fixture
def smoke(tmp_path, monkeypatch) -> NotebookSettings:
    """Smoke settings whose temporary folders land in tmp_path."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("PYRO_SCALOR_CACHE", raising=False)
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    torch.set_num_threads(2)  # tests/conftest.py restores the count
    return notebook_settings({"PYRO_SCALOR_SMOKE": "1"})


def test_find_root_is_the_repository():
    assert find_root() == ROOT


def test_smoke_settings_work_in_a_temporary_folder(smoke, tmp_path):
    assert smoke.smoke and smoke.root == ROOT
    assert smoke.work.parent == tmp_path and smoke.work.is_dir()
    assert smoke.cache == smoke.work / "cache"
    assert smoke.device in ("cpu", "cuda")
    assert torch.get_num_threads() == 1
    assert smoke.describe().startswith("smoke mode: True; repository: ")
    with pytest.raises(AttributeError):
        smoke.smoke = False  # frozen


def test_smoke_settings_take_the_cache_from_the_environment(tmp_path):
    env = {"PYRO_SCALOR_SMOKE": "1", "PYRO_SCALOR_CACHE": str(tmp_path / "data")}
    assert notebook_settings(env).cache == tmp_path / "data"


@pytest.mark.parametrize("value", [None, "", "0"])
def test_full_settings_use_the_repository(value):
    env = {} if value is None else {"PYRO_SCALOR_SMOKE": value}
    settings = notebook_settings(env)
    assert not settings.smoke
    assert settings.work == ROOT / "outputs" / "notebooks" and settings.cache is None
    assert main_job_run_dir(settings) == ROOT / "runs" / "cpu-default"


def test_show_displays_a_png(monkeypatch):
    display = pytest.importorskip("IPython.display")
    shown = []
    monkeypatch.setattr(display, "display", shown.append)
    fig = new_figure((2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    show(fig, dpi=50)
    assert len(shown) == 1 and isinstance(shown[0], display.Image)
    assert shown[0].format == "png" and shown[0].data.startswith(b"\x89PNG\r\n\x1a\n")


def test_main_job_scalor_trains_then_loads_and_writes_nothing_in_the_repo(smoke, monkeypatch):
    before = repository_files()
    lines = []
    scalor, history, preset = main_job_scalor(smoke, report=lines.append)
    assert lines[0] == f"training preset smoke for 2 steps in {smoke.work / 'run'}"
    assert preset.train.steps == notebook.SMOKE_STEPS and preset.train.data_preset == "smoke"
    assert scalor.tracking == preset.tracking
    assert history[-1]["step"] == 2 and lines[-1] == "model at step 2; data preset smoke"
    assert (main_job_run_dir(smoke) / "checkpoint.pt").is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must be loaded, not trained")

    monkeypatch.setattr(notebook.Scalor, "fit", no_training)
    lines.clear()
    again, history_again, _ = main_job_scalor(smoke, report=lines.append)
    assert lines[0].startswith("loading the trained model from ")
    assert history_again == history
    assert again.tracking == preset.tracking
    for name, value in scalor.nets.state_dict().items():
        assert torch.equal(value, again.nets.state_dict()[name]), name
    assert repository_files() == before
