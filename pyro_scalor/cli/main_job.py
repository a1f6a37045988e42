"""``pyro-scalor main``: the README's main job, end to end.

Builds the default dataset, trains the ``cpu-default`` preset (or ``--preset``), resuming an
unfinished run in the same directory, evaluates tracking on the test split, writes pictures and a
metrics JSON, and prints the metrics next to the paper's Table 1 figures for the same setting.
"""

from __future__ import annotations

from pathlib import Path

from pyro_scalor.cli.common import (
    add_cache_dir_argument,
    add_command,
    add_device_argument,
    add_progress_argument,
    positive_int,
    resolve_device,
)


def register(sub) -> None:
    """Add the ``main`` sub-command."""
    p = add_command(sub, "main", help="make data, train the CPU default, evaluate, write pictures")
    p.add_argument("--preset", default="cpu-default", help="run preset to train")
    p.add_argument("--out", type=Path, default=Path("outputs"), help="metrics and pictures")
    p.add_argument("--run-dir", type=Path, default=None, help="run folder (default: runs/<preset>)")
    p.add_argument(
        "--eval-sequences",
        type=positive_int,
        default=None,
        help="test sequences to score (default: the whole test split)",
    )
    add_device_argument(p)
    p.add_argument(
        "--no-cuda-graph",
        action="store_true",
        help="on a GPU, run the training step eagerly instead of replaying it as a CUDA graph",
    )
    add_cache_dir_argument(p)
    add_progress_argument(p)
    p.set_defaults(func=run_main)


def train_config_for(train_config, device, *, cuda_graph: bool = True):
    """The preset's training config (a TrainConfig) for ``device``: on a CUDA device the step is
    replayed as a CUDA graph (10x faster on an H100) when ``cuda_graph`` is set and the
    objective allows it ('elbo', one particle); elsewhere it runs eagerly."""
    import torch

    on_gpu = torch.device(device).type == "cuda"
    graphable = train_config.objective == "elbo" and train_config.particles == 1
    return train_config.replace(cuda_graph=cuda_graph and on_gpu and graphable)


def run_main(args) -> int:
    """Run the whole job; returns 0, 3 if training hit a non-finite loss, 130 or 143 if it was
    interrupted (the same command resumes it)."""
    from pyro_scalor.api import Scalor
    from pyro_scalor.data import load_dataset
    from pyro_scalor.eval.tracking import comparison_table, evaluate
    from pyro_scalor.io import save_json
    from pyro_scalor.train.checkpoint import load_checkpoint
    from pyro_scalor.train.config import get_run_preset
    from pyro_scalor.train.rundir import check_resume
    from pyro_scalor.train.trainer import NonFiniteLossError, Trainer, TrainingInterrupted
    from pyro_scalor.viz.tracking import write_tracking_pictures

    preset = get_run_preset(args.preset)
    device = resolve_device(args.device)
    run_dir = args.run_dir or Path("runs") / args.preset
    progress = not args.no_progress
    data = preset.train.data_preset
    print(f"[1/3] dataset {data} (generated once, then cached)")
    dataset = load_dataset(
        data,
        "train",
        num_sequences=preset.train.num_train,
        cache_dir=args.cache_dir,
        progress=progress,
    )
    resume = (run_dir / "checkpoint.pt").exists()
    train_config = train_config_for(preset.train, device, cuda_graph=not args.no_cuda_graph)
    saved = load_checkpoint(run_dir) if resume else None
    if saved is not None and saved["step"] >= preset.train.steps:
        # a finished run of another recipe (an older preset, a variant) is not this job's
        check_resume(
            run_dir / "checkpoint.pt",
            saved["model_config"],
            saved["train_config"],
            train_config.model_config(preset.model),
            train_config,
        )
        print(f"[2/3] {run_dir} is already trained; skipping training")
    else:
        print(f"[2/3] training preset {args.preset} ({preset.description}) in {run_dir}")
        scalor = Scalor(
            train_config.model_config(preset.model),
            device=device,
            seed=train_config.seed,
            tracking=preset.tracking,
        )
        trainer = Trainer(
            scalor,
            train_config,
            run_dir,
            dataset=dataset,
            resume=resume,
            cache_dir=args.cache_dir,
            progress=progress,
        )
        try:
            summary = trainer.fit()
        except NonFiniteLossError as err:
            print(f"training stopped: {err}")
            return 3
        except TrainingInterrupted as err:
            print(f"interrupted at step {err.step} of {err.steps}; run the same command to resume")
            return err.exit_code
        print(f"trained to step {summary['steps']} in {summary['seconds']:.0f} s")
    print(f"[3/3] evaluating on the {data} test split")
    scalor = Scalor.from_checkpoint(run_dir, device=device)
    metrics, example = evaluate(
        scalor,
        data,
        "test",
        num_sequences=args.eval_sequences,
        cache_dir=args.cache_dir,
        progress=progress,
    )
    metrics["checkpoint_step"] = scalor.step
    save_json(metrics, args.out / "metrics.json")
    paths = write_tracking_pictures(example["video"], example["result"], args.out / "pictures")
    print(comparison_table(metrics, data))
    print(
        f"metrics: {args.out / 'metrics.json'}; pictures: {args.out / 'pictures'} "
        f"({len(paths)} files); TensorBoard: tensorboard --logdir {run_dir / 'tb'}"
    )
    return 0
