"""The experiment sweep's variants build valid configurations (experiments/cpu_default_sweep)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SWEEP = Path(__file__).resolve().parents[1] / "experiments" / "cpu_default_sweep" / "sweep.py"


def _load_sweep():
    spec = importlib.util.spec_from_file_location("cpu_default_sweep", SWEEP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SWEEP_MODULE = _load_sweep()


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
