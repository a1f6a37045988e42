"""The example notebooks (jupytext percent scripts) are well formed and run top to bottom in
smoke mode."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = [
    "01_quickstart.py",
    "02_priors_and_guide_variants.py",
    "03_generation.py",
    "04_evaluation.py",
]
CELL_TIMEOUT_S = 300


def test_every_notebook_is_listed():
    assert sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.py")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_a_percent_script(name):
    """Cells split where intended, a markdown title says what the notebook is for, and the
    script is what jupytext writes back (so .py -> .ipynb -> .py changes nothing)."""
    text = (NOTEBOOKS / name).read_text()
    nb = jupytext.reads(text, fmt="py:percent")
    kinds = [cell.cell_type for cell in nb.cells]
    assert kinds.count("code") >= 3 and kinds.count("markdown") >= 2, kinds
    title = nb.cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# "), title.source
    assert "This notebook" in title.source
    assert nb.metadata["kernelspec"]["name"] == "python3"
    written = jupytext.writes(nb, fmt="py:percent")
    body = text.index("# %%")  # the header's jupytext_version depends on the installed one
    assert written[written.index("# %%") :] == text[body:]


@pytest.fixture(scope="module")
def smoke_env(tmp_path_factory):
    """Environment for the kernels: smoke mode, a shared temporary data cache and temp dir."""
    root = tmp_path_factory.mktemp("notebooks")
    (root / "tmp").mkdir()
    return {
        "PYRO_SCALOR_SMOKE": "1",
        "PYRO_SCALOR_CACHE": str(root / "cache"),
        "TMPDIR": str(root / "tmp"),  # the notebooks' tempfile.mkdtemp() lands here
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
    }


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_in_smoke_mode(name, smoke_env, monkeypatch, tmp_path):
    for key, value in smoke_env.items():
        monkeypatch.setenv(key, value)
    nb = jupytext.read(NOTEBOOKS / name)  # the notebook Jupyter would open, in memory
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    errors = [out for cell in code for out in cell.outputs if out.get("output_type") == "error"]
    assert not errors
    first = "".join(o.get("text", "") for o in code[0].outputs)
    assert "smoke mode: True" in first
    assert any(o.get("output_type") == "display_data" for cell in code for o in cell.outputs)
    print(f"{name}: {seconds:.1f} s")
    assert not list(tmp_path.iterdir()), "smoke mode must not write into the working directory"
