"""SVI training of SCALOR: batches, optimiser, schedules, checkpoints, logging, NaN guard.

Each step draws its batch from a generator seeded by (seed, step), so a run resumed from a
checkpoint (which also restores every random-number state) continues exactly as if it had never
stopped. ``seconds`` (time spent in training steps, logging and checkpoints excluded) is kept
in the checkpoint and in every history entry, so runs compare at equal wall-clock time; with
``max_seconds`` set, training stops when it reaches that budget. Checkpoints are written
atomically every ``checkpoint_every`` steps, at the end, and on SIGINT/SIGTERM. A non-finite
loss or gradient stops training with :class:`NonFiniteLossError` and leaves the last good
checkpoint in place; a signal saves, then raises :class:`TrainingInterrupted`. Run folders
follow :mod:`pyro_scalor.train.rundir` (a lock, no silent overwrite, runtime-only resume changes).
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from pathlib import Path

import pyro
import torch
from pyro.infer.util import is_validation_enabled
from tqdm.auto import tqdm

from pyro_scalor.train.checkpoint import (
    config_to_dict,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from pyro_scalor.train.config import OPTIMIZERS, TrainConfig
from pyro_scalor.train.diagnostics import loss_terms
from pyro_scalor.train.graphed import GraphedStep
from pyro_scalor.train.objectives import make_objective, presence_mode_for
from pyro_scalor.train.rundir import (
    CHECKPOINT,
    TENSORBOARD,
    RunLock,
    check_resume,
    prepare_run_folder,
)
from pyro_scalor.validation import validate_video

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss or gradient."""


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped training after saving the checkpoint at ``step``.

    ``str()`` is "interrupted at step N of M; rerun with --resume"; ``exit_code`` is the shell's
    convention for the signal (128 + number: 130 for SIGINT, 143 for SIGTERM); ``summary`` is
    the dict :meth:`Trainer.fit` would have returned.
    """

    def __init__(self, step: int, steps: int, signum: int, summary: dict) -> None:
        self.step, self.steps, self.signum, self.summary = step, steps, signum, summary
        self.exit_code = 128 + int(signum)
        super().__init__(f"interrupted at step {step} of {steps}; rerun with --resume")


class Trainer:
    """Trains a :class:`pyro_scalor.api.Scalor` on a dataset of videos.

    ``dataset`` (optional) is anything indexable returning dicts with ``video`` (T, C, H, W);
    by default the training split of ``train_config.data_preset`` is loaded. ``resume`` continues
    from ``run_dir/checkpoint.pt`` and refuses if its configs differ from the given ones beyond
    :data:`~pyro_scalor.train.rundir.RUNTIME_FIELDS`; ``force`` starts over in a folder that has
    a checkpoint, keeping it as a backup; without either, such a folder is refused
    (:class:`~pyro_scalor.train.rundir.RunFolderError`). The folder is locked from construction
    until :meth:`fit` ends or :meth:`close` is called.
    """

    def __init__(
        self,
        scalor,
        train_config: TrainConfig,
        run_dir: str | Path,
        *,
        dataset=None,
        resume: bool = False,
        force: bool = False,
        cache_dir=None,
        progress: bool = True,
        tensorboard: bool = True,
    ) -> None:
        self.scalor = scalor
        self.cfg = train_config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.step = 0
        self.seconds = 0.0
        self._stop_signal: int | None = None
        self.history: list[dict] = []
        self.writer = None
        self._lock = RunLock(self.run_dir).acquire()
        try:
            self.backup = prepare_run_folder(self.run_dir, resume=resume, force=force)
            self._setup(dataset, cache_dir, resume, tensorboard)
        except BaseException:
            self._lock.release()
            raise

    def _setup(self, dataset, cache_dir, resume: bool, tensorboard: bool) -> None:
        scalor = self.scalor
        if dataset is None:
            from pyro_scalor.data import load_dataset

            dataset = load_dataset(
                self.cfg.data_preset, "train", num_sequences=self.cfg.num_train, cache_dir=cache_dir
            )
        self.dataset = dataset
        needed = presence_mode_for(self.cfg.objective)
        if scalor.config.presence != needed:
            raise ValueError(
                f"objective {self.cfg.objective!r} needs presence={needed!r} but the model has "
                f"presence={scalor.config.presence!r}; build it with "
                "train_config.model_config(model_config)"
            )
        self.objective = make_objective(self.cfg.objective, self.cfg.particles)
        if self.cfg.cuda_graph and torch.device(scalor.device).type != "cuda":
            raise ValueError(
                f"cuda_graph needs the model on a CUDA device; it is on {scalor.device} "
                "(use --device cuda, or leave cuda_graph off)"
            )
        self.optimizer = self._make_optimizer()
        self._graphed: GraphedStep | None = None
        if resume:
            self._resume()
        else:
            pyro.set_rng_seed(self.cfg.seed)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # drop scalars a killed run logged after its checkpoint (or, starting afresh, all)
            purge = self.step + 1 if resume else 0
            self.writer = SummaryWriter(str(self.run_dir / TENSORBOARD), purge_step=purge)

    # ----------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        """Where this run's checkpoint lives."""
        return self.run_dir / CHECKPOINT

    def close(self) -> None:
        """Release the run folder's lock and close TensorBoard (fit() does both at its end)."""
        if self.writer is not None:
            self.writer.close()
        self._lock.release()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _resume(self) -> None:
        ckpt = load_checkpoint(self.checkpoint_path, map_location=self.scalor.device)
        check_resume(
            self.checkpoint_path,
            ckpt["model_config"],
            ckpt["train_config"],
            self.scalor.config,
            self.cfg,
        )
        self.scalor.nets.load_state_dict(ckpt["nets"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self._set_optimizer_mode()
        self.step = ckpt["step"]
        self.seconds = float(ckpt.get("seconds", 0.0))
        self.history = ckpt.get("history", [])
        set_rng_state(ckpt["rng"])
        log.info("resumed %s at step %d", self.checkpoint_path, self.step)

    def save(self) -> Path:
        """Write the checkpoint atomically; returns its path."""
        return save_checkpoint(
            self.checkpoint_path,
            nets=self.scalor.nets.state_dict(),
            optimizer=self.optimizer.state_dict(),
            step=self.step,
            seconds=self.seconds,
            rng=rng_state(),
            model_config=config_to_dict(self.scalor.config),
            train_config=config_to_dict(self.cfg),
            tracking_config=config_to_dict(self.scalor.tracking),
            history=self.history,
        )

    def _make_optimizer(self) -> torch.optim.Optimizer:
        """``cfg.optimizer`` (RMSprop or Adam) over every network parameter; capturable with a
        device lr for cuda_graph."""
        params = list(self.scalor.nets.parameters())
        kind = OPTIMIZERS[self.cfg.optimizer]
        if self.cfg.cuda_graph:
            lr = torch.tensor(self.cfg.lr, device=self.scalor.device)
            return kind(params, lr=lr, capturable=True, foreach=True)
        return kind(params, lr=self.cfg.lr)

    def _set_optimizer_mode(self) -> None:
        """After loading optimiser state: lr type, ``capturable`` and step counters as this
        run's mode needs (a checkpoint written with or without cuda_graph resumes either way)."""
        graph = self.cfg.cuda_graph
        device = torch.device(self.scalor.device) if graph else torch.device("cpu")
        for group in self.optimizer.param_groups:
            lr = float(group["lr"])
            group["lr"] = torch.tensor(lr, device=device) if graph else lr
            group["capturable"] = graph
        for state in self.optimizer.state.values():
            if torch.is_tensor(state.get("step")):
                state["step"] = state["step"].to(device=device, dtype=torch.float32)

    def train_step(self, video: torch.Tensor, kw: dict, lr: float) -> tuple[float, float]:
        """One optimisation step on ``video`` with model/guide keyword arguments ``kw`` and
        learning rate ``lr``; returns ``(loss, grad_norm)``.

        Raises :class:`NonFiniteLossError` on a NaN or infinite loss or gradient: before the
        update when eager, after it with ``cuda_graph`` (the step is one graph); either way no
        checkpoint is written after it, so the last one on disk is good.
        """
        nets = self.scalor.nets
        if self.cfg.cuda_graph:
            validate_video(video)  # the graph itself skips the program's input checks
            if self._graphed is not None and not self._graphed.fits(video):
                self._graphed = None  # a new window length: a graph replays one shape only
            if self._graphed is None:
                self._graphed = GraphedStep(
                    self.objective,
                    self.scalor.model,
                    self.scalor.guide,
                    self.optimizer,
                    self.cfg.clip_norm,
                )
            loss_t, norm_t = self._graphed(video, lr=lr, **kw)
            loss, grad_norm = float(loss_t), float(norm_t)
            self._check_finite(loss, grad_norm)
            return loss, grad_norm
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss = self.objective.loss_and_grads(self.scalor.model, self.scalor.guide, video, **kw)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(nets.parameters(), self.cfg.clip_norm))
        self._check_finite(float(loss), grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss), grad_norm

    def _check_finite(self, loss: float, grad_norm: float) -> None:
        if math.isfinite(loss) and math.isfinite(grad_norm):
            return
        last = (
            f"the last good checkpoint is {self.checkpoint_path}"
            if self.checkpoint_path.exists()
            else "no checkpoint had been written yet"
        )
        raise NonFiniteLossError(
            f"non-finite loss ({loss}) or gradient norm ({grad_norm}) at step "
            f"{self.step}; {last} (try a lower --lr or --clip-norm)"
        )

    def batch(self, step: int) -> torch.Tensor:
        """The training videos (B, T, C, H, W) of ``step``, drawn with a (seed, step) generator."""
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step)
        idx = torch.randint(len(self.dataset), (self.cfg.batch_size,), generator=gen)
        video = torch.stack([self.dataset[int(i)]["video"] for i in idx])
        length = self.cfg.window(step)
        if length is not None and length < video.shape[1]:
            if self.cfg.seq_window == "random":
                b, t = video.shape[:2]
                start = torch.randint(t - length + 1, (b,), generator=gen)
                frames = start[:, None] + torch.arange(length)
                video = video[torch.arange(b)[:, None], frames]
            else:
                video = video[:, :length]
        return video.to(self.scalor.device)

    def step_kwargs(self, step: int, video: torch.Tensor) -> dict:
        """Keyword arguments of model and guide at ``step``: schedules and discovery dropout."""
        kw = {
            "temperature": self.cfg.temperature(step),
            "disc_pres_prior": self.cfg.disc_pres_prior(step),
        }
        if self.cfg.discovery_dropout > 0:
            b, t = video.shape[:2]
            keep = torch.rand(b, t, device=video.device) >= self.cfg.discovery_dropout
            keep[:, 0] = True
            kw["discovery_mask"] = keep
        return kw

    # ----------------------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train until ``steps`` (or the time budget); returns a summary dict (steps, seconds,
        last losses).

        Raises :class:`TrainingInterrupted` after saving when SIGINT or SIGTERM arrived before
        the end, and :class:`NonFiniteLossError` on a NaN. The folder's lock is released when
        it returns or raises.
        """
        self._lock.acquire()
        try:
            summary = self._fit()
        finally:
            if self.writer is not None:
                self.writer.flush()
            self._lock.release()
        if summary["interrupted"]:
            raise TrainingInterrupted(self.step, self.cfg.steps, self._stop_signal, summary)
        return summary

    def _fit(self) -> dict:
        self._stop_signal = None
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        old_handlers = self._install_signal_handlers()
        was_validating = is_validation_enabled()
        pyro.enable_validation(False)
        nets = self.scalor.nets
        nets.train()
        start = time.perf_counter()
        bar = tqdm(
            total=self.cfg.steps,
            initial=self.step,
            disable=not self.progress,
            desc="train",
            dynamic_ncols=True,
        )
        loss_ema = None
        out_of_time = False
        try:
            while self.step < self.cfg.steps and not out_of_time:
                tick = time.perf_counter()
                lr = self.cfg.lr
                video = self.batch(self.step)
                kw = self.step_kwargs(self.step, video)
                loss, grad_norm = self.train_step(video, kw, lr)
                self.seconds += time.perf_counter() - tick
                out_of_time = self.cfg.max_seconds is not None and (
                    self.seconds >= self.cfg.max_seconds
                )
                per_seq = float(loss) / video.shape[0]
                loss_ema = per_seq if loss_ema is None else 0.95 * loss_ema + 0.05 * per_seq
                self.step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss_ema:.1f}", T=f"{kw['temperature']:.2f}")
                self._log(video, kw, per_seq, grad_norm, lr)
                if self.step % self.cfg.checkpoint_every == 0:
                    self.save()
                if self._stop_signal is not None:
                    log.warning(
                        "signal %d received: saved step %d and stopping",
                        self._stop_signal,
                        self.step,
                    )
                    break
        finally:
            bar.close()
            pyro.enable_validation(was_validating)
            self._restore_signal_handlers(old_handlers)
        if out_of_time:
            log.info("time budget of %.0f s reached at step %d", self.cfg.max_seconds, self.step)
        self.save()
        stopped_early = self.step < self.cfg.steps and not out_of_time
        return {
            "steps": self.step,
            "seconds": time.perf_counter() - start,
            "train_seconds": self.seconds,
            "out_of_time": out_of_time,
            "loss_ema": loss_ema,
            "interrupted": stopped_early and self._stop_signal is not None,
            "checkpoint": str(self.checkpoint_path),
        }

    def _log(self, video, kw, loss: float, grad_norm: float, lr: float) -> None:
        step = self.step
        if step % self.cfg.log_every and step != 1:
            return
        with torch.random.fork_rng(devices=[]):
            terms = loss_terms(self.scalor.model, self.scalor.guide, video, **kw)
        entry = {
            "step": step,
            "seconds": self.seconds,
            "train_loss": loss,
            "grad_norm": grad_norm,
            "lr": lr,
            **kw,
            **terms,
        }
        entry.pop("discovery_mask", None)
        self.history.append(entry)
        log.debug("step %d: %s", step, entry)
        if self.writer is None:
            return
        w = self.writer
        w.add_scalar("loss/train", loss, step)
        w.add_scalar("train/grad_norm", grad_norm, step)
        w.add_scalar("train/temperature", kw["temperature"], step)
        w.add_scalar("train/lr", lr, step)
        w.add_scalar("train/disc_pres_prior", kw["disc_pres_prior"], step)
        for k, v in terms.items():
            group = "objects" if k.startswith("num_") else "terms"
            w.add_scalar(f"{group}/{k}", v, step)
        if step % self.cfg.image_every == 0 or step == 1:
            self._log_images(video[:1], step)

    def _log_images(self, video: torch.Tensor, step: int) -> None:
        from pyro_scalor.viz import figure_to_array, plot_sequence_grid

        with torch.random.fork_rng(devices=[]):
            res = self.scalor.track(video)
        to_np = lambda x: x[0].permute(0, 2, 3, 1).clamp(0, 1).cpu().numpy()  # noqa: E731
        fig = plot_sequence_grid(
            {
                "original": to_np(video),
                "reconstruction": to_np(res.reconstruction),
                "background": to_np(res.background),
                "boxes": to_np(video),
            },
            boxes=res.boxes[0].cpu().numpy(),
            ids=res.ids[0].cpu().numpy(),
            valid=res.valid[0].cpu().numpy(),
            discovered=res.discovered[0].cpu().numpy(),
            title=f"step {step}",
        )
        self.writer.add_image("tracking", figure_to_array(fig), step, dataformats="HWC")

    # ----------------------------------------------------------------------------------------
    def _install_signal_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            self._stop_signal = signum

        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in old:
            signal.signal(s, handler)
        return old

    @staticmethod
    def _restore_signal_handlers(old) -> None:
        if old:
            for s, h in old.items():
                signal.signal(s, h)
