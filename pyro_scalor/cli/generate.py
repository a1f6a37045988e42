"""``pyro-scalor generate``: prior samples or conditional generation, with pictures and scores.

Examples::

    pyro-scalor generate CKPT --prior --frames 10 --out outputs/generation
    pyro-scalor generate CKPT --observe 8 --horizon 8 --data dsprites-ld-long
    pyro-scalor generate CKPT --observe 5 --horizon 5 --data dsprites-ld-long \\
        --out outputs/generation --json outputs/generation/horizon.json
    pyro-scalor generate CKPT --observe 5 --horizon 5 --transition velocity \\
        --motion-estimate exponential   # imagine with another transition, the same weights
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from pyro_scalor.cli.common import (
    CliError,
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
    positive_float,
    positive_int,
    probability,
)
from pyro_scalor.model.config import MOTION_ESTIMATES, TRANSITION_PRIORS

log = logging.getLogger(__name__)


def register(sub) -> None:
    """Add the ``generate`` sub-command."""
    p = add_command(
        sub,
        "generate",
        help="prior samples or conditional generation (observe, then imagine) with pictures",
        description=(
            "Prior sampling (--prior --frames N) or conditional generation: infer the first "
            "--observe frames of test sequences, imagine --horizon more, write Fig. 6-style "
            "pictures (red margin = imagined) and per-step errors against ground truth, beside "
            "stand-still, copy-last-frame and constant-velocity baselines. Prior samples are "
            "compared with the data (objects per frame, speeds, sizes)."
        ),
    )
    p.add_argument("checkpoint", type=Path, help="checkpoint file or run directory")
    p.add_argument("--prior", action="store_true", help="sample from the prior from t = 0")
    p.add_argument("--frames", type=positive_int, help="frames per prior sample (default: 8)")
    p.add_argument("--observe", type=int, help="observed frames (default: from the data)")
    p.add_argument("--horizon", type=int, help="imagined frames (default: from the data)")
    p.add_argument(
        "--data",
        "--preset",
        dest="data",
        help="data preset (default: the checkpoint's training data); --preset is an alias",
    )
    p.add_argument(
        "--split",
        choices=("train", "val", "test"),
        help="which split (default: test; train for the --prior comparison)",
    )
    p.add_argument(
        "--data-sequences",
        type=positive_int,
        default=64,
        help="--prior: data sequences whose ground truth the samples are compared with",
    )
    p.add_argument(
        "--num-sequences",
        type=positive_int,
        help="sequences to generate (default: 4 prior samples; 64 test sequences scored)",
    )
    p.add_argument("--pictures", type=non_negative_int, default=3, help="sequences to draw")
    p.add_argument(
        "--disc-pres-prior",
        type=probability,
        nargs="+",
        default=0.1,
        metavar="P",
        help="discovery presence prior while imagining (the paper's: 0.1); several values are "
        "per frame, the last repeating (e.g. first frame, later frames)",
    )
    p.add_argument(
        "--fit-discovery",
        action="store_true",
        help="set the discovery prior to the guide's own discovery rates on --data-sequences "
        "training sequences: objects per cell at the first frame, new objects per cell later",
    )
    p.add_argument(
        "--temperature", type=positive_float, default=0.1, help="relaxed-presence temperature"
    )
    p.add_argument(
        "--noise-scale",
        type=non_negative_float,
        default=1.0,
        help="multiplies the std of sampled Gaussian latents (1 = the model, 0 = prior means)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument(
        "--batch-size", type=positive_int, default=16, help="sequences generated at once"
    )
    p.add_argument(
        "--out", type=Path, default=Path("outputs/generation"), help="directory for pictures"
    )
    p.add_argument("--json", type=Path, help="write the numbers here")
    p.add_argument(
        "--transition",
        choices=TRANSITION_PRIORS,
        help="transition prior of the imagined frames (default: the checkpoint's tracking "
        "config, else the trained one)",
    )
    p.add_argument(
        "--motion-estimate",
        choices=MOTION_ESTIMATES,
        help="motion estimate of the imagined frames (default as --transition)",
    )
    add_max_objects_argument(p)
    add_tracking_arguments(p)
    add_device_argument(p)
    add_cache_dir_argument(p)
    add_progress_argument(p)
    p.set_defaults(func=run_generate)


def _check(args) -> None:
    """Refuse option combinations that do not go together (CliError)."""
    if args.prior:
        wrong = [f"--{k}" for k in ("observe", "horizon") if getattr(args, k) is not None]
        if wrong:
            raise CliError(
                f"{', '.join(wrong)} only apply to conditional generation; drop them or --prior"
            )
        return
    if args.frames is not None:
        raise CliError(
            "--frames is for --prior sampling; conditional generation takes --observe and --horizon"
        )
    for name in ("observe", "horizon"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CliError(f"--{name} must be >= 1, got {value}")


def run_generate(args) -> int:
    """Run ``pyro-scalor generate``; returns an exit code."""
    from pyro_scalor.data import get_preset, load_dataset
    from pyro_scalor.eval.horizon import format_horizon_table, prior_summary, run_conditional
    from pyro_scalor.eval.prior_stats import format_statistics, prior_statistics
    from pyro_scalor.io import save_json
    from pyro_scalor.viz.generation import write_generation_pictures

    _check(args)
    scalor = load_scalor(args.checkpoint, args.device)
    apply_tracking_arguments(args, scalor)
    imagine = {
        "imagine_transition_prior": args.transition,
        "imagine_motion_estimate": args.motion_estimate,
    }
    imagine = {k: v for k, v in imagine.items() if v is not None}
    if imagine:
        scalor.tracking = dataclasses.replace(scalor.tracking, **imagine)
    scalor.nets.eval()
    prior = args.disc_pres_prior
    prior = prior if isinstance(prior, list) else [prior]
    settings = dict(
        disc_pres_prior=prior[0] if len(prior) == 1 else list(prior),
        temperature=args.temperature,
        noise_scale=args.noise_scale,
        max_objects=args.max_objects,
    )
    preset = args.data or scalor.train_config.data_preset
    rates = None
    if args.fit_discovery:
        rates = _fitted_discovery(scalor, preset, args)
        settings["disc_pres_prior"] = [rates["first"], rates["later"]]
    if args.prior:
        result = scalor.sample_prior(
            args.num_sequences or 4, args.frames or 8, seed=args.seed, **settings
        )
        numbers = prior_summary(result)
        numbers.update(mode="prior", seed=args.seed, **settings)
        per_frame = ", ".join(f"{v:.1f}" for v in numbers["objects_per_frame"])
        print(
            f"prior samples: {numbers['num_sequences']} x {numbers['frames']} frames; "
            f"mean objects per frame: {per_frame}"
        )
        split = args.split or "train"
        n = min(args.data_sequences, get_preset(preset).num_sequences(split))
        data = load_dataset(preset, split, num_sequences=n, cache_dir=args.cache_dir)
        numbers["statistics"] = prior_statistics(result, data)
        numbers["statistics_data"] = {"preset": preset, "split": split, "num_sequences": n}
        print(f"prior samples against the ground truth of {n} {preset} {split} sequences:")
        print(format_statistics(numbers["statistics"]))
        paths = write_generation_pictures(
            result, args.out, max_sequences=args.pictures, prefix="prior"
        )
    else:
        split = args.split or "test"
        available = get_preset(preset).num_sequences(split)
        n = min(args.num_sequences or 64, available)
        if args.num_sequences and args.num_sequences > available:
            log.warning(
                "the %s split of %s has %d sequences; using them all", split, preset, available
            )
        dataset = load_dataset(preset, split, num_sequences=n, cache_dir=args.cache_dir)
        numbers, example = run_conditional(
            scalor,
            dataset,
            args.observe,
            args.horizon,
            n,
            args.seed,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            **settings,
        )
        numbers["mode"] = "conditional"
        print(
            f"conditional generation on {preset} {split}: observe {numbers['observe']}, "
            f"imagine {numbers['horizon']}"
        )
        print(format_horizon_table(numbers))
        paths = write_generation_pictures(
            example["result"],
            args.out,
            real=example["real"],
            max_sequences=args.pictures,
            prefix="conditional",
        )
    numbers["checkpoint_step"] = getattr(scalor, "step", None)
    imagined = scalor.inference_programs(max_objects=args.max_objects, imagine=True)[0].cfg
    numbers["imagined_with"] = {
        "transition_prior": imagined.transition_prior,
        "motion_estimate": imagined.motion_estimate,
    }
    if rates is not None:
        numbers["fitted_discovery"] = rates
    for path in paths:
        print(f"wrote {path}")
    if args.json:
        print(f"wrote {save_json(numbers, args.json)}")
    return 0


def _fitted_discovery(scalor, preset: str, args) -> dict:
    """The guide's discovery rates (:func:`pyro_scalor.eval.prior_stats.discovery_rates`) on
    the first ``--data-sequences`` training sequences of ``preset``, clipped to (0, 1)."""
    import torch

    from pyro_scalor.data import get_preset, load_dataset
    from pyro_scalor.eval.prior_stats import discovery_rates

    n = min(args.data_sequences, get_preset(preset).num_sequences("train"))
    data = load_dataset(preset, "train", num_sequences=n, cache_dir=args.cache_dir)
    video = torch.stack([torch.as_tensor(data[i]["video"]) for i in range(n)])
    result = scalor.track(video, tracking=None, max_objects=args.max_objects)
    rates = discovery_rates(result.ids, result.valid, scalor.config.num_cells)
    rates = {k: min(max(v, 1e-6), 1 - 1e-6) for k, v in rates.items()}
    print(
        f"discovery prior fitted on {n} {preset} training sequences: first frame "
        f"{rates['first']:.4f}, later frames {rates['later']:.4f} per cell"
    )
    return rates
