"""``pyro-scalor train`` and ``pyro-scalor evaluate``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from pyro_scalor.train.config import OPTIMIZERS, RUN_PRESETS, SEQ_WINDOWS, get_run_preset
from pyro_scalor.train.objectives import OBJECTIVES

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """'auto' (CUDA if available), 'cpu', 'cuda' or 'cuda:N' to a device; clear error if absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return dev


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def register(sub) -> None:
    """Add the ``train`` and ``evaluate`` sub-commands."""
    p = sub.add_parser("train", help="train SCALOR by SVI on a named preset")
    p.add_argument(
        "--preset",
        default="cpu-default",
        choices=list(RUN_PRESETS),
        help="run preset (model + training config)",
    )
    p.add_argument("--run-dir", type=Path, default=None, help="default runs/<preset>")
    p.add_argument("--steps", type=_positive_int, help="override the number of steps")
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--lr", type=_positive_float)
    p.add_argument("--optimizer", choices=list(OPTIMIZERS), help="rmsprop (the paper's) or adam")
    p.add_argument("--clip-norm", type=_positive_float)
    p.add_argument("--objective", choices=OBJECTIVES)
    p.add_argument("--particles", type=_positive_int)
    p.add_argument("--seed", type=int)
    p.add_argument("--num-train", type=_positive_int, help="training sequences to use")
    p.add_argument("--data-preset", help="override the data preset")
    p.add_argument("--checkpoint-every", type=_positive_int)
    p.add_argument(
        "--max-seconds",
        type=_positive_float,
        help="stop once this much time went into training steps (equal-budget comparisons)",
    )
    p.add_argument("--seq-len", type=_positive_int, help="train on windows of this many frames")
    p.add_argument("--seq-window", choices=SEQ_WINDOWS, help="where a window starts")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--threads", type=_positive_int, help="CPU threads for torch")
    p.add_argument(
        "--cuda-graph",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="replay the training step as a CUDA graph (GPU only; default: the preset's)",
    )
    p.add_argument("--cache-dir", type=Path, help="dataset cache directory")
    p.add_argument("--resume", action="store_true", help="continue run-dir's checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)

    e = sub.add_parser("evaluate", help="tracking metrics and pictures of a checkpoint")
    e.add_argument("checkpoint", type=Path, help="checkpoint file or run directory")
    e.add_argument("--preset", default=None, help="data preset (default: the training one)")
    e.add_argument("--split", default="test", choices=("train", "val", "test"))
    e.add_argument("--num-sequences", type=_positive_int, help="default: the whole split")
    e.add_argument("--json", type=Path, help="write the metrics here")
    e.add_argument("--pictures", type=Path, help="directory for PNG/GIF pictures")
    e.add_argument("--batch-size", type=_positive_int, default=16)
    e.add_argument("--device", default="auto")
    e.add_argument("--cache-dir", type=Path)
    e.add_argument("--no-progress", action="store_true")
    e.add_argument(
        "--ignore-edge-area",
        type=_non_negative_float,
        default=0.0,
        help="true boxes at the frame's edge under this many px^2 are don't-care (default 0)",
    )
    e.add_argument("--nll", action="store_true", help="also estimate -log p(x) (IWAE bound)")
    e.add_argument("--particles", type=_positive_int, default=1000, help="NLL particles K")
    e.add_argument("--nll-sequences", type=_positive_int, default=50, help="N sequences")
    e.add_argument(
        "--nll-start",
        type=_non_negative_int,
        default=0,
        help="index of the first NLL sequence (default 0)",
    )
    e.add_argument("--nll-chunk", type=_positive_int, default=50, help="particles per pass")
    e.set_defaults(func=run_evaluate)


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
    "cuda_graph",
)


def run_train(args) -> int:
    """Train according to ``args``; returns an exit code (3 on a non-finite loss)."""
    from pyro_scalor.api import Scalor
    from pyro_scalor.train.trainer import NonFiniteLossError, Trainer

    preset = get_run_preset(args.preset)
    overrides = {k: getattr(args, k) for k in TRAIN_OVERRIDES if getattr(args, k) is not None}
    cfg = preset.train.replace(**overrides)
    device = resolve_device(args.device)
    run_dir = args.run_dir or Path("runs") / args.preset
    scalor = Scalor(cfg.model_config(preset.model), device=device, seed=cfg.seed)
    trainer = Trainer(
        scalor,
        cfg,
        run_dir,
        resume=args.resume,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
    )
    try:
        summary = trainer.fit()
    except NonFiniteLossError as err:
        log.error("%s", err)
        print(f"pyro-scalor train: stopped: {err}")
        return 3
    print(
        f"trained {summary['steps']} steps in {summary['seconds']:.0f} s "
        f"({summary['train_seconds']:.0f} s in training steps); "
        f"checkpoint: {summary['checkpoint']}"
    )
    return 0


def run_evaluate(args) -> int:
    """Evaluate a checkpoint according to ``args``; prints the table, writes JSON and pictures."""
    from pyro_scalor.api import Scalor
    from pyro_scalor.evaluation import evaluate, format_table, save_json, write_pictures

    scalor = Scalor.from_checkpoint(args.checkpoint, device=resolve_device(args.device))
    preset = args.preset or scalor.train_config.data_preset
    metrics, example = evaluate(
        scalor,
        preset,
        args.split,
        num_sequences=args.num_sequences,
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
        ignore_edge_area=args.ignore_edge_area,
    )
    metrics["checkpoint_step"] = scalor.step
    table = format_table(metrics)
    if args.nll:
        from pyro_scalor.nll import NLL_KEYS, estimate_nll_on_split, format_nll

        nll = estimate_nll_on_split(
            scalor,
            preset,
            args.split,
            num_sequences=args.num_sequences,
            nll_sequences=args.nll_sequences,
            nll_start=args.nll_start,
            particles=args.particles,
            chunk=args.nll_chunk,
            cache_dir=args.cache_dir,
        )
        metrics.update({k: nll[k] for k in NLL_KEYS})
        # per-sequence values, so that two checkpoints can be compared pairwise
        metrics["nll_values"] = [float(v) for v in nll["nll"]]
        metrics["nll_start"] = nll["nll_start"]
        table += "\n" + format_nll(nll)
    print(table)
    if args.json:
        save_json(metrics, args.json)
    if args.pictures:
        for path in write_pictures(example, args.pictures):
            print(f"wrote {path}")
    return 0
