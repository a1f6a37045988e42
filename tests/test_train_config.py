"""Training configuration, run presets, objectives and the checkpoint format."""

from __future__ import annotations

import pytest
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

from pyro_scalor.model.config import get_model_config
from pyro_scalor.train.checkpoint import (
    config_to_dict,
    load_checkpoint,
    save_checkpoint,
    train_config_from_dict,
)
from pyro_scalor.train.config import RUN_PRESETS, TrainConfig, get_run_preset
from pyro_scalor.train.objectives import make_objective
from pyro_scalor.train.schedules import Schedule


def test_smoke_preset_is_tiny_and_short():
    smoke = get_run_preset("smoke")
    assert smoke.model == get_model_config("tiny")
    assert smoke.train.data_preset == "smoke"
    assert smoke.train.steps <= 5 and smoke.train.batch_size <= 2
    with pytest.raises(ValueError, match="unknown preset 'nope'.*smoke"):
        get_run_preset("nope")


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(steps=0), "steps"),
        (dict(batch_size=0), "batch_size"),
        (dict(lr=0.0), "lr"),
        (dict(clip_norm=-1.0), "clip_norm"),
        (dict(particles=0), "particles"),
        (dict(discovery_dropout=1.0), "discovery_dropout"),
        (dict(seq_len=0), "seq_len"),
        (dict(checkpoint_every=0), "intervals"),
        (dict(objective="no-such"), "unknown objective 'no-such'.*elbo-relaxed"),
        (dict(lr_factor=Schedule(1.0, 0.0, 10, "linear")), "lr_factor must stay > 0"),
        (dict(lr_factor=Schedule(0.0)), "lr_factor must stay > 0"),
        (dict(optimizer="sgd"), "unknown optimizer 'sgd'.*rmsprop, adam"),
    ],
)
def test_bad_train_configs_raise(changes, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig().replace(**changes)


@pytest.mark.parametrize("name", list(RUN_PRESETS))
def test_train_config_round_trips_through_a_dict(name):
    cfg = RUN_PRESETS[name].train
    again = train_config_from_dict(config_to_dict(cfg))
    assert again == cfg
    assert isinstance(again.temperature, Schedule) and isinstance(again.disc_pres_prior, Schedule)
    assert isinstance(again.lr_factor, Schedule)


def test_train_config_with_a_delayed_lr_decay_round_trips_and_old_dicts_load():
    cfg = TrainConfig(lr_factor=Schedule(1.0, 0.1, 100, "linear", delay=300))
    assert train_config_from_dict(config_to_dict(cfg)) == cfg
    # a checkpoint written before lr_factor existed: the default constant factor 1
    old = config_to_dict(TrainConfig())
    del old["lr_factor"]
    assert train_config_from_dict(old).lr_factor == Schedule(1.0)
    # ... and before optimizer existed: RMSprop, as then
    del old["optimizer"]
    assert train_config_from_dict(old).optimizer == "rmsprop"


def test_objectives_by_name():
    elbo = make_objective("elbo")
    assert type(elbo) is TraceMeanField_ELBO
    assert elbo.num_particles == 1 and not elbo.vectorize_particles
    relaxed = make_objective("elbo-relaxed", particles=3)
    assert type(relaxed) is Trace_ELBO
    assert relaxed.num_particles == 3 and relaxed.vectorize_particles
    with pytest.raises(ValueError, match="unknown objective"):
        make_objective("no-such-objective")


def test_checkpoint_round_trip_and_errors(tmp_path):
    model_cfg = get_model_config("tiny")
    train_cfg = RUN_PRESETS["smoke"].train
    path = save_checkpoint(
        tmp_path / "run" / "checkpoint.pt",
        nets={},
        step=7,
        model_config=config_to_dict(model_cfg),
        train_config=config_to_dict(train_cfg),
    )
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    ckpt = load_checkpoint(path.parent)  # a run directory works too
    assert ckpt["step"] == 7
    assert ckpt["model_config"] == model_cfg and ckpt["train_config"] == train_cfg
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
