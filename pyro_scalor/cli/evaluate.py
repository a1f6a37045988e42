"""``pyro-scalor evaluate``: tracking metrics, pictures and optionally the NLL of a checkpoint."""

from __future__ import annotations

from pathlib import Path

from pyro_scalor.cli.common import (
    add_cache_dir_argument,
    add_command,
    add_device_argument,
    add_max_objects_argument,
    add_progress_argument,
    add_tracking_arguments,
    apply_tracking_arguments,
    load_scalor,
    non_negative_float,
    non_negative_int,
    positive_int,
)


def register(sub) -> None:
    """Add the ``evaluate`` sub-command."""
    e = add_command(sub, "evaluate", help="tracking metrics and pictures of a checkpoint")
    e.add_argument("checkpoint", type=Path, help="checkpoint file or run directory")
    e.add_argument(
        "--data",
        "--preset",
        dest="data",
        default=None,
        help="data preset to evaluate on (default: the checkpoint's training data); "
        "--preset is an alias",
    )
    e.add_argument("--split", default="test", choices=("train", "val", "test"), help="which split")
    e.add_argument(
        "--num-sequences", type=positive_int, help="sequences to score (default: the whole split)"
    )
    e.add_argument("--json", type=Path, help="write the metrics here")
    e.add_argument("--pictures", type=Path, help="directory for PNG/GIF pictures")
    e.add_argument("--batch-size", type=positive_int, default=16, help="videos tracked at once")
    add_max_objects_argument(e)
    add_tracking_arguments(e)
    add_device_argument(e)
    add_cache_dir_argument(e)
    add_progress_argument(e)
    e.add_argument(
        "--ignore-edge-area",
        type=non_negative_float,
        default=0.0,
        help="true boxes at the frame's edge under this many px^2 are don't-care",
    )
    e.add_argument("--nll", action="store_true", help="also estimate -log p(x) (IWAE bound)")
    e.add_argument("--particles", type=positive_int, default=1000, help="NLL particles K")
    e.add_argument("--nll-sequences", type=positive_int, default=50, help="NLL sequences N")
    e.add_argument(
        "--nll-start", type=non_negative_int, default=0, help="index of the first NLL sequence"
    )
    e.add_argument("--nll-chunk", type=positive_int, default=50, help="NLL particles per pass")
    e.set_defaults(func=run_evaluate)


def run_evaluate(args) -> int:
    """Evaluate a checkpoint according to ``args``; prints the table, writes JSON and pictures."""
    from pyro_scalor.eval.tracking import evaluate, format_table
    from pyro_scalor.io import save_json
    from pyro_scalor.viz.tracking import write_tracking_pictures

    scalor = load_scalor(args.checkpoint, args.device)
    apply_tracking_arguments(args, scalor)
    preset = args.data or scalor.train_config.data_preset
    metrics, example = evaluate(
        scalor,
        preset,
        args.split,
        num_sequences=args.num_sequences,
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
        ignore_edge_area=args.ignore_edge_area,
        max_objects=args.max_objects,
    )
    metrics["checkpoint_step"] = scalor.step
    table = format_table(metrics)
    if args.nll:
        from pyro_scalor.eval.nll import NLL_KEYS, estimate_nll_on_split, format_nll

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
            progress=not args.no_progress,
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
        for path in write_tracking_pictures(example["video"], example["result"], args.pictures):
            print(f"wrote {path}")
    return 0
