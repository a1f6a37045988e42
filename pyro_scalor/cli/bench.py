"""``pyro-scalor bench``: a thin entry to the benchmark harness in ``benchmarks/``.

The harness (training-step time and peak memory; see ``benchmarks/step_time.py``) is not part of
the package: it lives in the ``benchmarks`` folder of the source checkout, next to the installed
(editable) package, and is loaded from there under the name :data:`HARNESS_MODULE`.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pyro_scalor
from pyro_scalor.cli.common import CliError, add_command

#: The name the harness is imported under (not ``benchmarks``, which other projects may use).
HARNESS_MODULE = "pyro_scalor_benchmarks"
HELP = "training-step time and peak memory (reference config, ld vs vhd, fixed counts)"


def benchmarks_dir() -> Path:
    """The ``benchmarks`` folder beside the package: ``<checkout>/benchmarks``."""
    return Path(pyro_scalor.__file__).resolve().parents[1] / "benchmarks"


def load_harness(folder: Path | None = None) -> ModuleType:
    """Import the harness package in ``folder`` (default :func:`benchmarks_dir`) once.

    Raises :class:`CliError` when the folder is missing (e.g. a wheel install, not a checkout).
    """
    if HARNESS_MODULE in sys.modules:
        return sys.modules[HARNESS_MODULE]
    folder = benchmarks_dir() if folder is None else Path(folder)
    init = folder / "__init__.py"
    if not init.is_file():
        raise CliError(
            f"the benchmark harness is not installed: no {init}; it ships with the source "
            "checkout (clone the repository and pip install -e . there)"
        )
    spec = importlib.util.spec_from_file_location(
        HARNESS_MODULE, init, submodule_search_locations=[str(folder)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[HARNESS_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[HARNESS_MODULE]
        raise
    return module


def register(sub) -> None:
    """Add the ``bench`` sub-command with the harness's options (when the harness is there)."""
    description = (
        "Median training-step time and peak memory of SCALOR on real and fixed-object-count "
        "videos (the harness in the checkout's benchmarks/ folder)."
    )
    try:
        harness = load_harness()
    except CliError as err:
        # without the harness every argument is accepted, so that running it says what is missing
        p = add_command(sub, "bench", help=HELP, description=description, prefix_chars="+")
        p.add_argument("args", nargs="*", help=argparse.SUPPRESS)
        p.set_defaults(func=_missing(err))
        return
    p = add_command(sub, "bench", help=HELP, description=description)
    harness.add_arguments(p)
    p.set_defaults(func=harness.run)


def _missing(err: CliError):
    def run(args) -> int:
        raise err

    return run
