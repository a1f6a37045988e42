"""Shared test set-up: every test runs single-threaded with a clean Pyro state.

Tiny models are dominated by thread start-up, and on a busy 2-core machine two threads were seen
to make a step 20-40 times slower; the fixture also restores Pyro's validation flag.

Also shared: ``make_video`` (a small synthetic video; ``from tests.conftest import make_video``)
and the module-scoped fixtures ``cache`` (a data cache) and ``checkpoint`` (a smoke-trained run
directory).
"""

from __future__ import annotations

import contextlib
import io

import pyro
import pytest
import torch
from pyro.infer.util import is_validation_enabled


@pytest.fixture(autouse=True)
def _isolated():
    threads, validation = torch.get_num_threads(), is_validation_enabled()
    torch.set_num_threads(1)
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()
    pyro.enable_validation(validation)
    torch.set_num_threads(threads)


def make_video(b: int = 2, t: int = 3, size: int = 64) -> torch.Tensor:
    """A (b, t, 3, size, size) video: grey background, two coloured squares moving right."""
    video = torch.full((b, t, 3, size, size), 0.15)
    for i in range(b):
        for f in range(t):
            x = 6 + 4 * f + 3 * i
            video[i, f, 0, 10:22, x : x + 12] = 0.9
            video[i, f, 2, 36:46, 40 - x // 2 : 50 - x // 2] = 0.8
    return video


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A data cache for one test module."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, cache):
    """A smoke-trained run directory (``pyro-scalor train --preset smoke``: a few steps of the
    tiny model), one per test module."""
    from pyro_scalor.cli import main

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("run")
    args = ["train", "--preset", "smoke", "--run-dir", str(run_dir), "--cache-dir", str(cache)]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            code = main([*args, "--no-progress", "--device", "cpu"])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return run_dir


def make_generation(frames, boxes, ids, valid, observed: int):
    """A GenerationResult of given frames (B, T, C, H, W), boxes (B, T, K, 4), ids (B, T, K)
    and validity (B, T, K): no background or masks, presence = validity, nothing discovered."""
    from pyro_scalor.api import GenerationResult

    b, t, k = valid.shape
    return GenerationResult(
        frames=frames,
        background=torch.zeros_like(frames),
        masks=torch.zeros(b, t, 1, *frames.shape[-2:]),
        boxes=boxes,
        ids=ids,
        presence=valid.float(),
        valid=valid,
        discovered=torch.zeros(b, t, k, dtype=torch.bool),
        depth=torch.zeros(b, t, k),
        observed=observed,
    )
