"""The discovery presence prior may change from frame to frame (generation uses one value for
the first frame and another for later frames)."""

from __future__ import annotations

import pyro.poutine as poutine
import pytest
import torch

from pyro_scalor.api import Scalor
from pyro_scalor.model import sites
from pyro_scalor.model.config import get_model_config
from pyro_scalor.model.model import frame_prior


def test_frame_prior_by_hand():
    assert frame_prior(0.1, 5) == 0.1
    assert [frame_prior([0.3, 0.01], t) for t in range(3)] == [0.3, 0.01, 0.01]
    assert [frame_prior((0.5, 0.2, 0.1), t) for t in range(4)] == [0.5, 0.2, 0.1, 0.1]


@pytest.mark.parametrize("prior", [[0.3, 0.01], 0.2])
def test_model_uses_each_frames_discovery_prior(prior):
    scalor = Scalor(get_model_config("tiny"), seed=0)
    trace = poutine.trace(scalor.model).get_trace(batch_size=2, num_frames=3, disc_pres_prior=prior)
    for t in range(3):
        probs = trace.nodes[sites.disc("pres", t)]["fn"]
        while not hasattr(probs, "probs"):
            probs = probs.base_dist
        expected = frame_prior(prior, t)
        torch.testing.assert_close(probs.probs, torch.full_like(probs.probs, expected))
