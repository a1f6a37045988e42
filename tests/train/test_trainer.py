"""The Trainer: seeded batches, checkpoints, exact resume, NaN guard, signals."""

from __future__ import annotations

import math
import os
import signal

import pyro
import pytest
import torch
from pyro.infer.util import is_validation_enabled

from pyro_scalor.api import Scalor
from pyro_scalor.data import load_dataset
from pyro_scalor.train.checkpoint import load_checkpoint
from pyro_scalor.train.config import RUN_PRESETS
from pyro_scalor.train.rundir import RunFolderError
from pyro_scalor.train.trainer import NonFiniteLossError, Trainer, TrainingInterrupted

SMOKE = RUN_PRESETS["smoke"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return load_dataset("smoke", "train", num_sequences=SMOKE.train.num_train, cache_dir=cache)


def smoke_cfg(**changes):
    return SMOKE.train.replace(**{"log_every": 1, **changes})


def make_trainer(run_dir, cfg, dataset, *, resume=False, model_config=None) -> Trainer:
    scalor = Scalor(model_config or SMOKE.model, seed=cfg.seed)
    return Trainer(
        scalor, cfg, run_dir, dataset=dataset, resume=resume, progress=False, tensorboard=False
    )


def params(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.scalor.nets.state_dict().items()}


def record_saves(monkeypatch) -> list[int]:
    steps: list[int] = []
    original = Trainer.save

    def save(self):
        steps.append(self.step)
        return original(self)

    monkeypatch.setattr(Trainer, "save", save)
    return steps


# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, kind", [("rmsprop", torch.optim.RMSprop), ("adam", torch.optim.Adam)]
)
def test_the_configured_optimizer_trains_every_parameter(tmp_path, dataset, name, kind):
    trainer = make_trainer(tmp_path, smoke_cfg(steps=1, optimizer=name, lr=1e-3), dataset)
    assert type(trainer.optimizer) is kind
    before = params(trainer)
    trainer.fit()
    after = params(trainer)
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(moved) == len(before)
    assert len(trainer.optimizer.state) == len(list(trainer.scalor.nets.parameters()))


def test_batches_and_step_arguments_are_seeded_by_step(tmp_path, dataset):
    cfg = smoke_cfg()
    trainer = make_trainer(tmp_path, cfg, dataset)
    a = trainer.batch(3)
    assert a.shape == (cfg.batch_size, cfg.seq_len, 3, 64, 64)
    assert torch.equal(a, trainer.batch(3))
    assert torch.equal(a, make_trainer(tmp_path / "other", cfg, dataset).batch(3))
    assert any(not torch.equal(trainer.batch(k), a) for k in (0, 1, 2, 4))
    kw = trainer.step_kwargs(2, a)
    assert kw["temperature"] == cfg.temperature(2)
    assert kw["disc_pres_prior"] == cfg.disc_pres_prior(2)
    mask = kw["discovery_mask"]
    assert mask.shape == a.shape[:2] and mask.dtype == torch.bool
    assert mask[:, 0].all(), "discovery always runs on the first frame"
    no_dropout = make_trainer(tmp_path / "nd", cfg.replace(discovery_dropout=0.0), dataset)
    assert "discovery_mask" not in no_dropout.step_kwargs(2, a)


def test_random_windows_are_contiguous_seeded_and_vary(tmp_path, dataset):
    cfg = smoke_cfg(seq_len=2, seq_window="random")
    trainer = make_trainer(tmp_path, cfg, dataset)
    full = torch.stack([dataset[i]["video"] for i in range(len(dataset))])  # (N, 4, 3, 64, 64)
    starts = set()
    for step in range(12):
        batch = trainer.batch(step)
        assert batch.shape == (cfg.batch_size, 2, 3, 64, 64)
        assert torch.equal(batch, trainer.batch(step))
        for row in batch:
            found = [
                (n, s)
                for n in range(full.shape[0])
                for s in range(full.shape[1] - 1)
                if torch.equal(full[n, s : s + 2], row)
            ]
            assert found, "a window is two consecutive frames of one training sequence"
            starts.add(found[0][1])
    assert len(starts) > 1, "windows start at different frames"
    first = make_trainer(tmp_path / "first", smoke_cfg(seq_len=2), dataset).batch(0)
    assert all(any(torch.equal(full[n, :2], row) for n in range(len(full))) for row in first)
    with pytest.raises(ValueError, match="seq_window"):
        smoke_cfg(seq_window="middle")


def test_the_last_steps_train_on_their_own_window_length(tmp_path, dataset):
    cfg = smoke_cfg(steps=5, seq_len=2, seq_window="random", final_seq_len=3, final_steps=2)
    trainer = make_trainer(tmp_path, cfg, dataset)
    # steps 0-2 on 2-frame windows, the last two (3 and 4) on 3-frame ones
    assert [trainer.batch(k).shape[1] for k in range(5)] == [2, 2, 2, 3, 3]
    full = make_trainer(tmp_path / "f", cfg.replace(final_seq_len=None), dataset)
    assert full.batch(4).shape[1] == dataset[0]["video"].shape[0]  # None: whole sequences
    trainer.fit()
    assert trainer.step == 5
    with pytest.raises(ValueError, match="final_steps"):
        smoke_cfg(steps=5, final_steps=6)


def test_a_new_window_length_captures_the_graphed_step_again(tmp_path, dataset, monkeypatch):
    # no GPU needed: a stand-in for GraphedStep records what it was built for
    from pyro_scalor.train import trainer as trainer_module

    built = []

    class FakeGraphedStep:
        def __init__(self, *args):
            self.static = {}
            built.append(self)

        fits = trainer_module.GraphedStep.fits

        def __call__(self, video, lr, **kw):
            self.static.setdefault("video", torch.empty_like(video))
            return torch.tensor(1.0), torch.tensor(0.5)

    monkeypatch.setattr(trainer_module, "GraphedStep", FakeGraphedStep)
    trainer = make_trainer(tmp_path, smoke_cfg(seq_len=2), dataset)
    trainer.cfg = trainer.cfg.replace(cuda_graph=True)
    short, long = trainer.batch(0), dataset[0]["video"][None].repeat(2, 1, 1, 1, 1)
    for video in (short, short, long, long):
        assert trainer.train_step(video, {}, 1e-3) == (1.0, 0.5)
    assert len(built) == 2  # captured once per shape


def test_fit_trains_logs_and_checkpoints(tmp_path, dataset, monkeypatch):
    saves = record_saves(monkeypatch)
    trainer = make_trainer(tmp_path, smoke_cfg(steps=3, checkpoint_every=2), dataset)
    start = params(trainer)
    summary = trainer.fit()
    assert summary["steps"] == 3 and not summary["interrupted"]
    assert summary["checkpoint"] == str(tmp_path / "checkpoint.pt")
    assert saves == [2, 3]  # every checkpoint_every steps, and at the end
    assert [e["step"] for e in trainer.history] == [1, 2, 3]
    for entry in trainer.history:
        assert {"train_loss", "grad_norm", "temperature", "loss", "nll", "kl_bg"} <= set(entry)
        assert math.isfinite(entry["train_loss"]) and math.isfinite(entry["grad_norm"])
        assert "discovery_mask" not in entry
    end = params(trainer)
    assert any(not torch.equal(start[k], end[k]) for k in start), "the optimiser must step"
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["step"] == 3 and ckpt["history"] == trainer.history
    for k, v in ckpt["nets"].items():
        assert torch.equal(v, end[k]), k
    # the API loads the checkpoint and tracks exactly like the trained object
    loaded = Scalor.from_checkpoint(tmp_path / "checkpoint.pt")
    assert loaded.step == 3 and loaded.train_config == trainer.cfg
    video = trainer.batch(0)
    a, b = loaded.track(video), trainer.scalor.track(video)
    assert torch.equal(a.ids, b.ids) and torch.equal(a.reconstruction, b.reconstruction)


# ------------------------------------------------------------------------------------------
# 14. exact resume
@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_resume_continues_exactly(tmp_path, dataset, optimizer):
    n = 4
    cfg = smoke_cfg(steps=n, checkpoint_every=2, optimizer=optimizer)
    straight = make_trainer(tmp_path / "straight", cfg, dataset)
    straight.fit()

    first = make_trainer(tmp_path / "split", cfg.replace(steps=n // 2), dataset)
    first.fit()
    assert first.step == n // 2
    second = make_trainer(tmp_path / "split", cfg, dataset, resume=True)
    assert second.step == n // 2 and len(second.history) == n // 2
    second.fit()
    assert second.step == n

    losses = [e["train_loss"] for e in straight.history]
    assert len(losses) == n and len(set(losses)) == n
    assert [e["train_loss"] for e in second.history] == losses
    # every logged term, exactly (wall-clock seconds aside, which only grow)
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(second.history) == strip(straight.history)
    seconds = [e["seconds"] for e in second.history]
    assert all(0 < a < b for a, b in zip(seconds, seconds[1:]))
    assert load_checkpoint(tmp_path / "split" / "checkpoint.pt")["seconds"] == second.seconds
    a, b = params(straight), params(second)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    opt_a, opt_b = straight.optimizer.state_dict()["state"], second.optimizer.state_dict()["state"]
    for k in opt_a:
        for name in opt_a[k]:
            assert torch.equal(torch.as_tensor(opt_a[k][name]), torch.as_tensor(opt_b[k][name]))
    on_disk = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    assert on_disk["step"] == n
    for k, v in on_disk["nets"].items():
        assert torch.equal(v, a[k]), k


def test_resume_refuses_a_different_configuration(tmp_path, dataset):
    cfg = smoke_cfg(steps=1)
    make_trainer(tmp_path, cfg, dataset).fit()
    with pytest.raises(RunFolderError, match="training config differs"):
        make_trainer(tmp_path, cfg.replace(lr=cfg.lr * 10), dataset, resume=True)
    with pytest.raises(ValueError, match="differs from the one given in optimizer 'rmsprop' "):
        make_trainer(tmp_path, cfg.replace(optimizer="adam"), dataset, resume=True)
    with pytest.raises(RunFolderError, match="model config differs .* max_objects 4 \\(given 3"):
        other = SMOKE.model.replace(max_objects=3)
        make_trainer(tmp_path, cfg, dataset, resume=True, model_config=other)
    # runtime settings may change: steps, time budget, threads, logging and checkpoint intervals
    runtime = dict(steps=5, max_seconds=9.0, threads=2, log_every=3, checkpoint_every=7)
    for key, value in runtime.items():
        with make_trainer(tmp_path, cfg.replace(**{key: value}), dataset, resume=True) as t:
            assert t.step == 1 and getattr(t.cfg, key) == value
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        make_trainer(tmp_path / "empty", cfg, dataset, resume=True)


def test_time_budget_stops_training_early(tmp_path, dataset):
    cfg = smoke_cfg(steps=50, max_seconds=1e-6)
    trainer = make_trainer(tmp_path, cfg, dataset)
    summary = trainer.fit()
    assert summary["steps"] == 1 and summary["out_of_time"]
    assert summary["train_seconds"] == trainer.seconds > 0
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 1
    with pytest.raises(ValueError, match="max_seconds"):
        cfg.replace(max_seconds=0)


# ------------------------------------------------------------------------------------------
# 15. NaN guard
def _nan_loss_after(trainer: Trainer, good_calls: int) -> None:
    original = trainer.objective.loss_and_grads
    calls = [0]

    def loss_and_grads(*args, **kwargs):
        loss = original(*args, **kwargs)
        calls[0] += 1
        return float("nan") if calls[0] > good_calls else loss

    trainer.objective.loss_and_grads = loss_and_grads


def _poison_parameter_at(monkeypatch, step: int) -> None:
    original = Trainer._log

    def _log(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.step == step:
            with torch.no_grad():
                self.scalor.nets.glimpse_decoder.fc[0].weight[0, 0] = float("nan")

    monkeypatch.setattr(Trainer, "_log", _log)


@pytest.mark.filterwarnings("ignore:Encountered NaN:UserWarning")
@pytest.mark.parametrize("how", ["nan-loss", "nan-parameter"])
def test_non_finite_loss_stops_with_the_last_good_checkpoint(tmp_path, dataset, monkeypatch, how):
    saves = record_saves(monkeypatch)
    trainer = make_trainer(tmp_path, smoke_cfg(steps=6, checkpoint_every=2), dataset)
    if how == "nan-loss":
        _nan_loss_after(trainer, good_calls=3)
    else:
        _poison_parameter_at(monkeypatch, step=3)  # after the step-2 checkpoint
    with pytest.raises(NonFiniteLossError) as info:
        trainer.fit()
    message = str(info.value)
    assert str(tmp_path / "checkpoint.pt") in message
    assert "at step 3" in message and "non-finite" in message
    assert saves == [2], "no checkpoint may be written after the failure"
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["step"] == 2 and len(ckpt["history"]) == 2
    assert all(torch.isfinite(v).all() for v in ckpt["nets"].values())
    loaded = Scalor.from_checkpoint(tmp_path / "checkpoint.pt")
    assert torch.isfinite(loaded.track(trainer.batch(0)).reconstruction).all()


@pytest.mark.filterwarnings("ignore:Encountered NaN:UserWarning")
def test_non_finite_loss_before_any_checkpoint_names_no_missing_file(tmp_path, dataset):
    trainer = make_trainer(tmp_path, smoke_cfg(steps=3, checkpoint_every=2), dataset)
    _nan_loss_after(trainer, good_calls=0)
    with pytest.raises(NonFiniteLossError, match="at step 0") as info:
        trainer.fit()
    path = tmp_path / "checkpoint.pt"
    assert str(path) not in str(info.value) or path.is_file()


# ------------------------------------------------------------------------------------------
# 16. SIGINT / SIGTERM
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_and_stops(tmp_path, dataset, monkeypatch, signum):
    received = []

    def sentinel(sig, frame):  # catches the signal if the Trainer did not install its handler
        received.append(sig)

    previous = signal.signal(signum, sentinel)
    try:
        original = Trainer._log

        def _log(self, *args, **kwargs):
            original(self, *args, **kwargs)
            if self.step == 2:
                os.kill(os.getpid(), signum)

        monkeypatch.setattr(Trainer, "_log", _log)
        saves = record_saves(monkeypatch)
        trainer = make_trainer(tmp_path, smoke_cfg(steps=10, checkpoint_every=100), dataset)
        with pytest.raises(TrainingInterrupted) as info:
            trainer.fit()
        assert signal.getsignal(signum) is sentinel, "the previous handler must be restored"
    finally:
        signal.signal(signum, previous)
    assert not received, "the Trainer's handler must catch the signal during fit"
    err = info.value
    assert str(err) == "interrupted at step 2 of 10; rerun with --resume"
    assert err.exit_code == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum]
    assert (err.step, err.steps, err.signum) == (2, 10, signum)
    assert err.summary["interrupted"] and err.summary["steps"] == 2
    assert saves == [2]
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 2
    # the checkpoint resumes, and the lock was released on the way out
    monkeypatch.undo()
    with make_trainer(
        tmp_path, smoke_cfg(steps=10, checkpoint_every=100), dataset, resume=True
    ) as t:
        assert t.step == 2 and len(t.history) == 2


# ------------------------------------------------------------------------------------------
def test_fit_restores_pyro_validation(tmp_path, dataset):
    pyro.enable_validation(True)
    make_trainer(tmp_path, smoke_cfg(steps=1), dataset).fit()
    assert is_validation_enabled()


def test_tensorboard_after_resume_keeps_the_checkpoint_steps_scalars(
    tmp_path, dataset, monkeypatch
):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def build(cfg, resume):
        scalor = Scalor(SMOKE.model, seed=cfg.seed)
        return Trainer(scalor, cfg, tmp_path, dataset=dataset, resume=resume, progress=False)

    # a run killed after logging step 3, whose last checkpoint is step 2
    original = Trainer.save
    monkeypatch.setattr(Trainer, "save", lambda self: self.step == 2 and original(self))
    build(smoke_cfg(steps=3, checkpoint_every=1), resume=False).fit()
    monkeypatch.undo()
    first = EventAccumulator(str(tmp_path / "tb"))
    first.Reload()
    logged = {e.step: e.value for e in first.Scalars("loss/train")}
    assert sorted(logged) == [1, 2, 3]
    build(smoke_cfg(steps=4), resume=True).fit()
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    steps = [e.step for e in acc.Scalars("loss/train")]
    assert steps == [1, 2, 3, 4], "step 3 of the killed run is purged, step 2 kept"
    values = {e.step: e.value for e in acc.Scalars("loss/train")}
    assert values[2] == logged[2]
