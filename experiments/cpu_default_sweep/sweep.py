"""Session-3 sweep that chose the current ``cpu-default`` preset: train a variant, score it on val.

Every variant changes the session-2 ``cpu-default`` configuration (``BASE_MODEL`` /
``BASE_TRAIN`` below: full 8-frame sequences, 2000 steps, boxes of 3-16 px) in the ways listed
in ``VARIANTS``. The sweep ran two or three variants at a time with one torch thread each on the
2-core machine; each variant trains a fixed number of steps, so its result does not depend on
what else ran, only its time does. Scores are tracking metrics on the first 100 sequences of the
*validation* split (the test split is kept for the final preset), with duplicate suppression at
tracking time (``--threshold`` changes its overlap threshold, ``--track-threshold`` turns on track
suppression at that IoU).

    python experiments/cpu_default_sweep/sweep.py T4s --run-root runs/sweep
    python experiments/cpu_default_sweep/sweep.py T4s --run-root runs/sweep --eval-only \\
        --threshold 0.5
    python experiments/cpu_default_sweep/sweep.py T4s --run-root runs/sweep --steps 8000
    python experiments/cpu_default_sweep/sweep.py preset4_dd0 --run-root runs/sweep --eval-only \\
        --threshold 0.5 --track-threshold 0.5
    python experiments/cpu_default_sweep/sweep.py p5_b8 --run-root runs/sweep --device cuda \\
        --threshold 0.5 --track-threshold 0.5 --max-seconds 900
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from pyro_scalor.api import Scalor
from pyro_scalor.evaluation import evaluate
from pyro_scalor.model.config import get_model_config
from pyro_scalor.train.config import TrainConfig
from pyro_scalor.train.schedules import Schedule
from pyro_scalor.train.trainer import Trainer

BASE_MODEL = get_model_config("cpu").replace(max_objects=12)
BASE_TRAIN = TrainConfig(
    steps=2000,
    lr=3e-4,
    num_train=10000,
    temperature=Schedule(1.0, 0.5, 2000, "linear"),
    disc_pres_prior=Schedule(0.1, 1e-8, 1500, "exponential"),
    checkpoint_every=100,
    image_every=10**9,
)


def windows(length: int, steps: int, window: str = "first") -> dict:
    """Train changes for ``length``-frame windows over ``steps`` steps (schedules stretched)."""
    return dict(
        seq_len=length,
        seq_window=window,
        steps=steps,
        temperature=Schedule(1.0, 0.5, steps, "linear"),
        disc_pres_prior=Schedule(0.1, 1e-8, steps * 3 // 4, "exponential"),
    )


SCALE_22 = dict(min_scale=0.08, max_scale=0.22)
#: the session-4 preset (bg16w8 trained 4800 steps with the 4000-step ramps): session 5's base
PRESET4_MODEL = dict(SCALE_22, background_size=16, z_what_dim=8)
PRESET4_TRAIN = dict(windows(4, 4000, "random"), steps=4800)
#: the session-5 preset's training configuration (discovery dropout 0): session 6's base
PRESET5_MODEL = PRESET4_MODEL
PRESET5_TRAIN = dict(PRESET4_TRAIN, discovery_dropout=0.0)
#: the session-5 model with a 32-channel ConvLSTM and 8x8 encoder crops (session 6)
NARROW5_MODEL = dict(PRESET5_MODEL, feature_dim=32, encoder_glimpse_size=8)


ADAM6 = dict(PRESET5_TRAIN, optimizer="adam", lr=6e-4)
#: the session-10 preset's model: the discovery head sees the unexplained frame; std 0.2
PRESET10_MODEL = dict(PRESET5_MODEL, discovery_residual=True, likelihood_std=0.2)
#: ADAM6 for 6000 steps, its ramps stretched 1.25x (the main job's 1500 s budget stopped its
#: session-10 run at step 5377)
ADAM6_S6000 = dict(
    ADAM6,
    steps=6000,
    temperature=Schedule(1.0, 0.5, 5000, "linear"),
    disc_pres_prior=Schedule(0.1, 1e-8, 3750, "exponential"),
)


def batched(batch_size: int, steps: int) -> dict:
    """The session-5 preset's training with ``batch_size`` for ``steps`` steps, its ramps
    (temperature 4000 of 4800 steps, discovery prior 3000 of 4800) shortened in proportion."""
    return dict(
        PRESET5_TRAIN,
        batch_size=batch_size,
        steps=steps,
        temperature=Schedule(1.0, 0.5, steps * 5 // 6, "linear"),
        disc_pres_prior=Schedule(0.1, 1e-8, steps * 5 // 8, "exponential"),
    )


#: the session-5 preset's ramps in half the steps
RAMPS_HALF = dict(
    temperature=Schedule(1.0, 0.5, 2000, "linear"),
    disc_pres_prior=Schedule(0.1, 1e-8, 1500, "exponential"),
)
#: a learning-rate factor 1 for 3200 steps, then linear to 0.1 at step 4800
LR_DECAY = Schedule(1.0, 0.1, 1600, "linear", delay=3200)
#: name -> (model changes, train changes)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "base": ({}, {}),
    "lr1e3": ({}, dict(lr=1e-3)),
    "T4": ({}, windows(4, 4000)),
    "T4r": ({}, windows(4, 4000, "random")),
    "T4s": (SCALE_22, windows(4, 4000)),
    "T4rs20": (dict(min_scale=0.08, max_scale=0.2), windows(4, 4000, "random")),
    "T2rs": (SCALE_22, windows(2, 8000, "random")),
    "T4b2": ({}, dict(windows(4, 6000), batch_size=2)),
    # after the sweep: the resulting preset's configuration with another seed (run-to-run spread)
    "preset_seed1": (SCALE_22, dict(windows(4, 4000, "random"), seed=1)),
    # session 4, changes from the preset: a coarse background (painted at 16x16), smaller z_what
    "bg16": (dict(SCALE_22, background_size=16), windows(4, 4000, "random")),
    "bg16w16": (dict(SCALE_22, background_size=16, z_what_dim=16), windows(4, 4000, "random")),
    "bg16w8": (dict(SCALE_22, background_size=16, z_what_dim=8), windows(4, 4000, "random")),
    "bg16w4": (dict(SCALE_22, background_size=16, z_what_dim=4), windows(4, 4000, "random")),
    # bg16w8 with a milder final discovery prior (1e-4 instead of 1e-8): do edge slivers pay?
    "bg16w8p4": (
        dict(SCALE_22, background_size=16, z_what_dim=8),
        dict(windows(4, 4000, "random"), disc_pres_prior=Schedule(0.1, 1e-4, 3000, "exponential")),
    ),
    # the resulting session-4 preset (bg16w8, 4800 steps with the 4000-step ramps), seed 1
    "preset4_seed1": (PRESET4_MODEL, dict(PRESET4_TRAIN, seed=1)),
    # session 5, changes from the session-4 preset: a still coarser background (dsprites-ld's is
    # black; at t = 0 a 16x16 background still paints missed objects as blurs)
    "preset4_bg8": (dict(PRESET4_MODEL, background_size=8), PRESET4_TRAIN),
    "preset4_bg4": (dict(PRESET4_MODEL, background_size=4), PRESET4_TRAIN),
    # less discovery dropout (0.5 turns off all discovery in half the frames t > 0, so objects
    # entering the view are discovered in training half as often)
    "preset4_dd0": (PRESET4_MODEL, dict(PRESET4_TRAIN, discovery_dropout=0.0)),
    "preset4_dd25": (PRESET4_MODEL, dict(PRESET4_TRAIN, discovery_dropout=0.25)),
    # preset4_dd0 with seed 1, and with the milder final discovery prior of bg16w8p4
    "preset4_dd0_seed1": (PRESET4_MODEL, dict(PRESET4_TRAIN, discovery_dropout=0.0, seed=1)),
    "preset4_dd0p4": (
        PRESET4_MODEL,
        dict(
            PRESET4_TRAIN,
            discovery_dropout=0.0,
            disc_pres_prior=Schedule(0.1, 1e-4, 3000, "exponential"),
        ),
    ),
    # session 6, changes from the session-5 preset (preset4_dd0): a cheaper step, so more steps
    # fit the 30 minutes (step_time.py --session6: 0.27-0.34 s per step at 2 threads; 0.22-0.24 s
    # with a 32-channel ConvLSTM and 8x8 encoder crops; 0.20-0.23 s with 3-frame windows), each
    # with the steps that fit the same time
    "p5_f32eg8": (NARROW5_MODEL, dict(PRESET5_TRAIN, steps=6000)),
    "p5_f32eg8_T3": (NARROW5_MODEL, dict(PRESET5_TRAIN, seq_len=3, steps=8000)),
    "p5_T3": (PRESET5_MODEL, dict(PRESET5_TRAIN, seq_len=3, steps=6400)),
    "p5_T3_seed1": (PRESET5_MODEL, dict(PRESET5_TRAIN, seq_len=3, steps=6400, seed=1)),
    # the session-5 preset with a 1.5x learning rate (1e-3 stalled in session 3)
    "p5_lr45": (PRESET5_MODEL, dict(PRESET5_TRAIN, lr=4.5e-4)),
    "p5_lr45_seed1": (PRESET5_MODEL, dict(PRESET5_TRAIN, lr=4.5e-4, seed=1)),
    # session 7: larger batches. About 0.13 s of a step is fixed cost, so a batch of 8 costs
    # 0.41 s against 0.27-0.34 s for 4 (step_time.py --session6 --batch 8): 3400 steps of 8 fit
    # the preset's time, with the ramps shortened in proportion; a batch of 16 fits about 2000
    "p5_b8": (PRESET5_MODEL, batched(8, 3400)),
    "p5_b8_seed1": (PRESET5_MODEL, dict(batched(8, 3400), seed=1)),
    "p5_b8_lr42": (PRESET5_MODEL, dict(batched(8, 3400), lr=4.2e-4)),
    "p5_b8_lr42_seed1": (PRESET5_MODEL, dict(batched(8, 3400), lr=4.2e-4, seed=1)),
    "p5_b16": (PRESET5_MODEL, batched(16, 2000)),
    "p5_b16_seed1": (PRESET5_MODEL, dict(batched(16, 2000), seed=1)),
    # session 8: a smaller batch. The fixed cost makes a batch of 2 cheap: 0.187 s per step
    # against 0.258 s for 4 at 2 threads (experiments/bench/cpu_step_variants.py), so 6600
    # steps of 2 fit the main job's time; larger batches measured worse, in order (b16 < b8 < b4)
    "p5_b2": (PRESET5_MODEL, batched(2, 6600)),
    "p5_b2_seed1": (PRESET5_MODEL, dict(batched(2, 6600), seed=1)),
    # session 7: the ramps in half the steps (temperature over 2000, discovery prior over 1500),
    # so 2800 of the 4800 steps run at the end values (the 9600-step continuation gained most
    # from steps at the end values)
    "p5_ramp2": (PRESET5_MODEL, dict(PRESET5_TRAIN, **RAMPS_HALF)),
    "p5_ramp2_seed1": (PRESET5_MODEL, dict(PRESET5_TRAIN, **RAMPS_HALF, seed=1)),
    # session 7: the learning rate decayed linearly to a tenth over the last 1600 steps (less
    # noise in the final parameters, where tracking reads deterministic presence decisions)
    "p5_lrdec": (PRESET5_MODEL, dict(PRESET5_TRAIN, lr_factor=LR_DECAY)),
    "p5_lrdec_seed1": (PRESET5_MODEL, dict(PRESET5_TRAIN, lr_factor=LR_DECAY, seed=1)),
    # session 7: proposals may move 1.5 cells from their cell's centre (was 1), so a border cell
    # reaches 8 px past the frame's edge: entering edge slivers are a third of the misses
    "p5_shift15": (dict(PRESET5_MODEL, max_shift_cells=1.5), PRESET5_TRAIN),
    "p5_shift15_seed1": (dict(PRESET5_MODEL, max_shift_cells=1.5), dict(PRESET5_TRAIN, seed=1)),
    # session 9: Adam instead of RMSprop (momentum and bias-corrected second moments; the number
    # of updates caps the preset, so an optimiser that learns more per update is the lead)
    "p5_adam": (PRESET5_MODEL, dict(PRESET5_TRAIN, optimizer="adam")),
    "p5_adam6": (PRESET5_MODEL, ADAM6),
    "p5_adam6_seed1": (PRESET5_MODEL, dict(ADAM6, seed=1)),
    "p5_adam10": (PRESET5_MODEL, dict(PRESET5_TRAIN, optimizer="adam", lr=1e-3)),
    # session 9, on top of Adam at 6e-4 (one seed each, as leads): the learning-rate decay of
    # p5_lrdec, and 3-frame windows with the steps that fit the same time (as p5_T3)
    "p5_adam6_lrdec": (PRESET5_MODEL, dict(ADAM6, lr_factor=LR_DECAY)),
    "p5_adam6_T3": (PRESET5_MODEL, dict(ADAM6, seq_len=3, steps=6400)),
    # session 9: a background code of 1 or 2 numbers instead of 10. The main job's pictures
    # show the background painting blobs over small objects that are then never discovered
    # (dsprites-ld's background is black, so it needs no code at all)
    "p5_adam6_bg1": (dict(PRESET5_MODEL, z_bg_dim=1), ADAM6),
    "p5_adam6_bg2": (dict(PRESET5_MODEL, z_bg_dim=2), ADAM6),
    # session 10: a sharper likelihood (std 0.07 or 0.05 instead of 0.1) weighs every
    # unexplained pixel 2x or 4x against the KL of one more object; the count error comes
    # from objects never found (edge slivers) and from boxes drawn over two objects
    "p5_adam6_std07": (dict(PRESET5_MODEL, likelihood_std=0.07), ADAM6),
    "p5_adam6_std05": (dict(PRESET5_MODEL, likelihood_std=0.05), ADAM6),
    # both sharper likelihoods tracked worse, so the other direction: std 0.13 and 0.16
    "p5_adam6_std13": (dict(PRESET5_MODEL, likelihood_std=0.13), ADAM6),
    "p5_adam6_std16": (dict(PRESET5_MODEL, likelihood_std=0.16), ADAM6),
    # std 0.13 and 0.16 scored a little better than 0.1: one step further, and std 0.16 with
    # the 6000 steps (ramps stretched 1.25x) that fit the main job's 30 minutes at 2 threads
    "p5_adam6_std20": (dict(PRESET5_MODEL, likelihood_std=0.2), ADAM6),
    "p5_adam6_std16_s6000": (dict(PRESET5_MODEL, likelihood_std=0.16), ADAM6_S6000),
    # session 10: the discovery head also sees the frame where the propagated objects draw
    # nothing (ModelConfig.discovery_residual). At t > 0 the guide proposed nothing near 85% of
    # the entering edge slivers it missed (undercount.py proposals), although at t = 0 it
    # proposes near 85% of them: its mask input, pooled to 4x4-px blocks, cannot tell a few
    # new pixels from a tracked object's
    "p5_adam6_res": (dict(PRESET5_MODEL, discovery_residual=True), ADAM6),
    # the residual with std 0.2 (the best of the likelihood runs)
    "p5_adam6_res_std20": (PRESET10_MODEL, ADAM6),
    # the session-10 cpu-default preset (trained by the main job at 2 threads, not in the sweep)
    "p10": (PRESET10_MODEL, ADAM6_S6000),
}


def main(argv=None) -> int:
    """Train (or resume) one variant, evaluate it, print and write the scores; returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variant", choices=list(VARIANTS))
    p.add_argument("--run-root", type=Path, default=Path("runs/sweep"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-sequences", type=int, default=100)
    p.add_argument("--split", default="val")
    p.add_argument("--threshold", type=float, help="suppression threshold when tracking")
    p.add_argument(
        "--track-threshold", type=float, help="track suppression threshold (IoU) when tracking"
    )
    p.add_argument("--eval-only", action="store_true")
    p.add_argument(
        "--steps",
        type=int,
        help="train to this many steps instead (schedules unchanged: they stay at their end "
        "values); resuming a finished run this way continues it",
    )
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--max-seconds", type=float, help="stop training after this many seconds")
    args = p.parse_args(argv)
    model_changes, train_changes = VARIANTS[args.variant]
    cfg = BASE_TRAIN.replace(threads=args.threads, **train_changes)
    if args.steps is not None:
        cfg = cfg.replace(steps=args.steps)
    if args.max_seconds is not None:
        cfg = cfg.replace(max_seconds=args.max_seconds)
    run = args.run_root / args.variant
    torch.set_num_threads(args.threads)
    if not args.eval_only:
        scalor = Scalor(BASE_MODEL.replace(**model_changes), seed=cfg.seed, device=args.device)
        resume = (run / "checkpoint.pt").exists()
        trainer = Trainer(scalor, cfg, run, resume=resume, cache_dir=args.cache_dir, progress=False)
        summary = trainer.fit()
        print(f"{args.variant}: {summary['steps']} steps, {summary['train_seconds']:.0f} s")
    scalor = Scalor.from_checkpoint(run / "checkpoint.pt", device=args.device)
    if args.threshold is not None:
        scalor.config = scalor.config.replace(suppression_threshold=args.threshold)
    if args.track_threshold is not None:
        scalor.config = scalor.config.replace(track_suppression_threshold=args.track_threshold)
    metrics, _ = evaluate(
        scalor,
        "dsprites-ld",
        args.split,
        num_sequences=args.eval_sequences,
        cache_dir=args.cache_dir,
        progress=False,
    )
    keys = ("mota", "count_mae", "precision", "recall", "idf1", "motp_px", "propagated_fraction")
    out = {k: round(float(metrics[k]), 4) for k in keys}
    out.update(
        step=scalor.step,
        split=args.split,
        threshold=scalor.config.suppression_threshold,
        track_threshold=scalor.config.track_suppression_threshold,
    )
    print(args.variant, json.dumps(out))
    suffix = "" if args.steps is None else f"_step{scalor.step}"
    suffix += "" if args.threshold is None else f"_thr{args.threshold}"
    suffix += "" if args.track_threshold is None else f"_trk{args.track_threshold}"
    (run / f"eval_{args.split}{suffix}.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
