"""``pyro-scalor train``: train SCALOR by stochastic variational inference on a run preset."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pyro_scalor.cli.common import (
    add_cache_dir_argument,
    add_command,
    add_device_argument,
    add_progress_argument,
    positive_float,
    positive_int,
    resolve_device,
)
from pyro_scalor.train.config import OPTIMIZERS, RUN_PRESETS, SEQ_WINDOWS, get_run_preset
from pyro_scalor.train.objectives import OBJECTIVES

log = logging.getLogger(__name__)

#: Options that override a field of the preset's TrainConfig when given.
TRAIN_OVERRIDES = (
    "steps",
    "batch_size",
    "lr",
    "optimizer",
    "clip_norm",
    "objective",
    "particles",
    "seed",
    "num_train",
    "data_preset",
    "checkpoint_every",
    "threads",
    "max_seconds",
    "seq_len",
    "seq_window",
    "final_seq_len",
    "final_steps",
    "cuda_graph",
)


def register(sub) -> None:
    """Add the ``train`` sub-command."""
    p = add_command(sub, "train", help="train SCALOR by SVI on a named preset")
    p.add_argument(
        "--preset",
        default="cpu-default",
        choices=list(RUN_PRESETS),
        help="run preset (model + training config)",
    )
    p.add_argument("--run-dir", type=Path, default=None, help="run folder (default: runs/<preset>)")
    preset = " (default: the preset's)"
    p.add_argument("--steps", type=positive_int, help="number of training steps" + preset)
    p.add_argument("--batch-size", type=positive_int, help="videos per step" + preset)
    p.add_argument("--lr", type=positive_float, help="learning rate" + preset)
    p.add_argument(
        "--optimizer", choices=list(OPTIMIZERS), help="rmsprop (the paper's) or adam" + preset
    )
    p.add_argument(
        "--clip-norm", type=positive_float, help="gradient-norm clipping threshold" + preset
    )
    p.add_argument("--objective", choices=OBJECTIVES, help="training objective" + preset)
    p.add_argument("--particles", type=positive_int, help="particles of the objective" + preset)
    p.add_argument("--seed", type=int, help="random seed of weights and data order" + preset)
    p.add_argument("--num-train", type=positive_int, help="training sequences to use" + preset)
    p.add_argument("--data-preset", help="data preset to train on" + preset)
    p.add_argument(
        "--checkpoint-every", type=positive_int, help="steps between checkpoints" + preset
    )
    p.add_argument(
        "--max-seconds",
        type=positive_float,
        help="stop once this much time went into training steps (equal-budget comparisons)",
    )
    p.add_argument(
        "--seq-len", type=positive_int, help="train on windows of this many frames" + preset
    )
    p.add_argument("--seq-window", choices=SEQ_WINDOWS, help="where a window starts" + preset)
    p.add_argument(
        "--final-seq-len", type=positive_int, help="windows of the last --final-steps" + preset
    )
    p.add_argument(
        "--final-steps",
        type=int,
        help="the last steps, trained on --final-seq-len windows (0: none)" + preset,
    )
    add_device_argument(p)
    p.add_argument("--threads", type=positive_int, help="CPU threads for torch" + preset)
    p.add_argument(
        "--cuda-graph",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="replay the training step as a CUDA graph (GPU only)" + preset,
    )
    add_cache_dir_argument(p)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue run-dir's checkpoint with its own settings (only steps, time budget, "
        "threads, device, CUDA graph and logging/checkpoint intervals may be changed)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="start over in a run-dir that has a checkpoint, keeping the old one as a backup",
    )
    add_progress_argument(p)
    p.set_defaults(func=run_train)


def run_train(args) -> int:
    """Train according to ``args``; returns an exit code (3 on a non-finite loss, 130 or 143
    when interrupted by SIGINT or SIGTERM after saving a checkpoint)."""
    from pyro_scalor.api import Scalor, TrackingConfig
    from pyro_scalor.train.checkpoint import load_checkpoint
    from pyro_scalor.train.rundir import resumed_configs
    from pyro_scalor.train.trainer import NonFiniteLossError, Trainer, TrainingInterrupted

    preset = get_run_preset(args.preset)
    overrides = {k: getattr(args, k) for k in TRAIN_OVERRIDES if getattr(args, k) is not None}
    device = resolve_device(args.device)
    run_dir = args.run_dir or Path("runs") / args.preset
    if args.resume:
        # the run's own settings; only runtime options given on the command line may change
        model_cfg, cfg = resumed_configs(run_dir, overrides)
        tracking = load_checkpoint(run_dir).get("tracking_config") or preset.tracking
        if isinstance(tracking, dict):
            tracking = TrackingConfig.from_dict(tracking)
    else:
        cfg = preset.train.replace(**overrides)
        model_cfg, tracking = cfg.model_config(preset.model), preset.tracking
    scalor = Scalor(model_cfg, device=device, seed=cfg.seed, tracking=tracking)
    trainer = Trainer(
        scalor,
        cfg,
        run_dir,
        resume=args.resume,
        force=args.force,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
    )
    try:
        summary = trainer.fit()
    except NonFiniteLossError as err:
        log.error("%s", err)
        print(f"pyro-scalor train: stopped: {err}")
        return 3
    except TrainingInterrupted as err:
        print(f"pyro-scalor train: {err}")
        return err.exit_code
    print(
        f"trained {summary['steps']} steps in {summary['seconds']:.0f} s "
        f"({summary['train_seconds']:.0f} s in training steps); "
        f"checkpoint: {summary['checkpoint']}"
    )
    return 0
