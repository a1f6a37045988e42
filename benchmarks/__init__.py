"""The benchmark harness of pyro-scalor: training-step time and peak memory (``step_time``).

It lives beside the package, not in it: ``pyro-scalor bench`` (see
:mod:`pyro_scalor.cli.bench`) loads this folder from the source checkout, and
``python -m benchmarks`` runs it from the repository root.
"""

from .inputs import (
    DEFAULT_FIXED_COUNTS,
    DEFAULT_PRESETS,
    BenchInput,
    fixed_count_video,
    load_inputs,
)
from .memory import PeakMemory
from .report import REFERENCE_SETTING, TARGETS, format_table, summarise
from .step_time import add_arguments, run, run_benchmark, save_report
from .timing import TrainStep, bench_inputs, time_steps

__all__ = [
    "DEFAULT_FIXED_COUNTS",
    "DEFAULT_PRESETS",
    "REFERENCE_SETTING",
    "TARGETS",
    "BenchInput",
    "PeakMemory",
    "TrainStep",
    "add_arguments",
    "bench_inputs",
    "fixed_count_video",
    "format_table",
    "load_inputs",
    "run",
    "run_benchmark",
    "save_report",
    "summarise",
    "time_steps",
]
