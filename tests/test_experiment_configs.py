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


@pytest.mark.parametrize("name", sorted(SWEEP_MODULE.VARIANTS))
def test_sweep_variant_builds_valid_configs(name):
    model_changes, train_changes = SWEEP_MODULE.VARIANTS[name]
    model = SWEEP_MODULE.BASE_MODEL.replace(**model_changes)  # validates, raises if invalid
    train = SWEEP_MODULE.BASE_TRAIN.replace(**train_changes)
    for config, changes in ((model, model_changes), (train, train_changes)):
        for key, value in changes.items():
            assert getattr(config, key) == value, key


def test_session5_base_is_the_cpu_default_training_configuration():
    """PRESET5_* reproduces what the cpu-default preset trains (tracking settings aside)."""
    from pyro_scalor.train.config import get_run_preset

    preset = get_run_preset("cpu-default")
    model = SWEEP_MODULE.BASE_MODEL.replace(**SWEEP_MODULE.PRESET5_MODEL)
    train = SWEEP_MODULE.BASE_TRAIN.replace(**SWEEP_MODULE.PRESET5_TRAIN)
    tracking = {
        k: getattr(preset.model, k)
        for k in ("suppression_threshold", "track_suppression_threshold")
    }
    assert model.replace(**tracking) == preset.model
    for key in ("steps", "lr", "seq_len", "seq_window", "discovery_dropout", "temperature"):
        assert getattr(train, key) == getattr(preset.train, key), key
    assert train.disc_pres_prior == preset.train.disc_pres_prior
