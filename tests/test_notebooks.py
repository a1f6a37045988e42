"""The example notebooks run top to bottom in smoke mode, and match their generator script."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = [
    "01_quickstart.ipynb",
    "02_priors_and_guide_variants.ipynb",
    "03_generation.ipynb",
    "04_evaluation.ipynb",
]
CELL_TIMEOUT_S = 300


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


def test_notebooks_match_their_generator():
    script = NOTEBOOKS / "make_notebooks.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for name in NAMES:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, name


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_in_smoke_mode(name, smoke_env, monkeypatch, tmp_path):
    for key, value in smoke_env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.get("output_type") == "error"
    ]
    assert not errors
    first = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert "smoke mode: True" in first
    print(f"{name}: {seconds:.1f} s")
    assert not list(tmp_path.iterdir()), "smoke mode must not write into the working directory"
