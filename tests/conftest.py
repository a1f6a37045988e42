"""Shared test set-up: every test runs single-threaded with a clean Pyro state.

Tiny models are dominated by thread start-up, and on a busy 2-core machine two threads were seen
to make a step 20-40 times slower; the fixture also restores Pyro's validation flag.
"""

from __future__ import annotations

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
