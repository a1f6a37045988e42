"""The experiment sweep's variants build valid configurations, and the miss analysis's helpers
compute what they say (experiments/cpu_default_sweep)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

SWEEP_DIR = Path(__file__).resolve().parents[1] / "experiments" / "cpu_default_sweep"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"cpu_default_sweep_{name}", SWEEP_DIR / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SWEEP_MODULE = _load("sweep.py")
MISSES = _load("misses.py")
KNOBS = _load("knobs.py")
UNDERCOUNT = _load("undercount.py")


def test_knobs_settings_parse_with_and_without_a_rejection_threshold():
    assert KNOBS.setting("0.5:0.5") == (0.5, 0.5, None)
    assert KNOBS.setting("0.5:0:0.45") == (0.5, 0.0, 0.45)
    for bad in ("0.5", "0.5:0.5:0.3:1", "a:b"):
        with pytest.raises(Exception, match="expected S:K or S:K:R"):
            KNOBS.setting(bad)


def test_misses_groups_entering_and_leaving_slivers():
    # one object: a sliver entering at t=0, growing at t=1, shrinking at t=2 (a sliver again)
    boxes = torch.tensor(
        [[[0.0, 10.0, 2.0, 20.0]], [[0.0, 10.0, 8.0, 20.0]], [[0.0, 10.0, 3.0, 20.0]]]
    )
    item = {"boxes": boxes, "visible": torch.ones(3, 1, dtype=torch.bool)}
    slivers = np.array([[True], [False], [True]])
    groups = [MISSES.group_of(item, slivers, t, 0) for t in range(3)]
    assert groups == ["edge entering", "inner", "edge leaving"]


def test_undercount_readouts_patch_and_restore_the_library():
    import pyro_scalor.model.guide as guide_module
    import pyro_scalor.model.model as model_module
    from pyro_scalor.model.distributions import presence_mode_value

    originals = (
        guide_module.presence_mode_value,
        model_module._record,
        model_module.ScalorModel._propagate,
        guide_module.ScalorGuide._propagate,
    )
    probs = torch.tensor([0.1, 0.4, 0.5, 0.6, 0.9])
    for mode in ("relaxed", "hard"):  # at 0.5 the replacement is the library's own decision
        assert torch.equal(
            UNDERCOUNT.presence_at(0.5)(probs, mode), presence_mode_value(probs, mode)
        )
    assert UNDERCOUNT.presence_at(0.35)(probs, "hard").tolist() == [0, 1, 1, 1, 1]
    for spec, patched in (
        ("pres:0.35", lambda: guide_module.presence_mode_value),
        ("fallback:0.1", lambda: model_module._record),
        ("end-invisible:0.5", lambda: model_module.ScalorModel._propagate),
        ("end-invisible:0.5", lambda: guide_module.ScalorGuide._propagate),
    ):
        before = patched()
        with UNDERCOUNT.readout_context(spec):
            assert patched() is not before
        assert patched() is before
    with UNDERCOUNT.readout_context("base"):
        pass
    assert originals == (
        guide_module.presence_mode_value,
        model_module._record,
        model_module.ScalorModel._propagate,
        guide_module.ScalorGuide._propagate,
    )
    with pytest.raises(SystemExit, match="unknown read-out"):
        UNDERCOUNT.readout_context("nope:1")


def test_undercount_nearby_max_reads_the_3x3_cells_around_the_visible_centre():
    probs = np.zeros((8, 8))
    probs[0, 2] = 0.9  # two cells right of the top-left corner: outside its 3x3 block
    probs[1, 1] = 0.4
    probs[7, 7] = 0.7
    # a sliver at the top-left corner, partly outside the frame: clipped to (0, 0, 3, 10)
    assert UNDERCOUNT.nearby_max(probs, np.array([-5.0, -2.0, 3.0, 10.0]), 64) == 0.4
    # an object whose centre cell is (row 1, col 1) sees the 0.9 at (0, 2)
    assert UNDERCOUNT.nearby_max(probs, np.array([8.0, 8.0, 16.0, 16.0]), 64) == 0.9
    # a box at the bottom-right edge maps to the last cell
    assert UNDERCOUNT.nearby_max(probs, np.array([60.0, 60.0, 70.0, 70.0]), 64) == 0.7


def test_undercount_recording_discovery_collects_one_map_per_frame_and_restores():
    import pyro_scalor.model.guide as guide_module
    from pyro_scalor.api import Scalor
    from pyro_scalor.model.config import get_model_config

    original = guide_module.ScalorGuide._pres
    scalor = Scalor(get_model_config("tiny"), seed=0)
    with UNDERCOUNT.recording_discovery([]) as calls:
        scalor.track(torch.rand(2, 3, 3, 64, 64))
    assert guide_module.ScalorGuide._pres is original
    assert len(calls) == 3
    assert all(c.shape == (2, scalor.config.num_cells) for c in calls)
    assert all(((c >= 0) & (c <= 1)).all() for c in calls)


@pytest.mark.parametrize("name", sorted(SWEEP_MODULE.VARIANTS))
def test_sweep_variant_builds_valid_configs(name):
    model_changes, train_changes = SWEEP_MODULE.VARIANTS[name]
    model = SWEEP_MODULE.BASE_MODEL.replace(**model_changes)  # validates, raises if invalid
    train = SWEEP_MODULE.BASE_TRAIN.replace(**train_changes)
    for config, changes in ((model, model_changes), (train, train_changes)):
        for key, value in changes.items():
            assert getattr(config, key) == value, key


def test_session10_variant_is_the_cpu_default_configuration():
    """PRESET10_MODEL with ADAM6_S6000 reproduces what the cpu-default preset trains (tracking
    settings aside); ADAM6 is the same with 4800 steps and session 5's ramps, and PRESET5_TRAIN
    the same again with session 5's RMSprop at 3e-4."""
    from pyro_scalor.train.config import get_run_preset

    preset = get_run_preset("cpu-default")
    assert SWEEP_MODULE.VARIANTS["p10"] == (SWEEP_MODULE.PRESET10_MODEL, SWEEP_MODULE.ADAM6_S6000)
    model = SWEEP_MODULE.BASE_MODEL.replace(**SWEEP_MODULE.PRESET10_MODEL)
    train = SWEEP_MODULE.BASE_TRAIN.replace(**SWEEP_MODULE.ADAM6_S6000)
    tracking = {
        k: getattr(preset.model, k)
        for k in ("suppression_threshold", "track_suppression_threshold")
    }
    assert model.replace(**tracking) == preset.model
    keys = ("steps", "lr", "optimizer", "seq_len", "seq_window", "discovery_dropout")
    for key in keys + ("temperature", "disc_pres_prior"):
        assert getattr(train, key) == getattr(preset.train, key), key
    adam6 = SWEEP_MODULE.BASE_TRAIN.replace(**SWEEP_MODULE.ADAM6)
    session5 = SWEEP_MODULE.BASE_TRAIN.replace(**SWEEP_MODULE.PRESET5_TRAIN)
    assert (adam6.steps, adam6.temperature.steps, adam6.disc_pres_prior.steps) == (4800, 4000, 3000)
    assert (
        adam6.replace(
            steps=6000, temperature=train.temperature, disc_pres_prior=train.disc_pres_prior
        )
        == train
    )
    assert (session5.optimizer, session5.lr) == ("rmsprop", 3e-4)
    assert session5.replace(optimizer="adam", lr=6e-4) == adam6
