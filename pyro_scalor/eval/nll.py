"""Negative log-likelihood of videos under a trained SCALOR, by importance sampling.

``-log p(x)`` of each sequence is estimated by the importance-weighted bound with K particles
(Burda et al. 2016; SQAIR reports it with K = 1000): ``-(logsumexp_k log w_k - log K)``, an upper
bound on the NLL that tightens as K grows. Presence is evaluated as *hard* Bernoulli 0/1 in both
model and guide (the trained networks are shared, not retrained), so absent objects are exactly
switched off and their latents, scaled by presence 0 (``weight_kl_by_presence``), drop out; the
relaxation temperature plays no part. Particles run in chunks of vectorised samples under a plate
at dim -3 and the chunks' log weights are combined with one logsumexp, so K = 1000 fits in CPU
memory.

Example::

    from pyro_scalor.eval.nll import estimate_nll
    out = estimate_nll(scalor, video, particles=1000, chunk=50)
    out["nll_per_sequence"], out["nll_per_pixel"], out["nll_stderr"]
"""

from __future__ import annotations

import contextlib
import math

import pyro
import torch
from pyro.infer.enum import get_importance_trace
from tqdm.auto import tqdm

from pyro_scalor.model.guide import ScalorGuide
from pyro_scalor.model.model import ScalorModel
from pyro_scalor.train.iwae import PARTICLE_PLATE, bound_per_datum, trace_log_weights
from pyro_scalor.validation import validate_video

NLL_KEYS = (
    "nll_per_sequence",
    "nll_stderr",
    "nll_per_pixel",
    "nll_per_pixel_stderr",
    "nll_particles",
    "nll_sequences",
)


def hard_presence_programs(scalor) -> tuple[ScalorModel, ScalorGuide]:
    """SCALOR's model and guide with hard Bernoulli presence, sharing ``scalor.nets``' weights.

    Takes a :class:`pyro_scalor.api.Scalor`; returns ``(model, guide)`` from
    ``scalor.programs(presence='hard')``; ``scalor`` itself is left unchanged.
    """
    return scalor.programs(presence="hard")


@torch.no_grad()
def importance_log_weights(
    model,
    guide,
    *args,
    particles: int,
    chunk: int = 50,
    max_plate_nesting: int = 2,
    data_plate: str | None = "batch",
    **kwargs,
) -> torch.Tensor:
    """Log importance weights (K, N) of ``particles`` K samples per data point, in chunks.

    Runs ``guide(*args, **kwargs)`` and the model replayed against it ``ceil(K / chunk)`` times,
    each with a vectorised plate of at most ``chunk`` particles at dim ``-(max_plate_nesting+1)``;
    ``data_plate`` names the plate of independent data points (N = its size). Float64.
    """
    if particles < 1 or chunk < 1:
        raise ValueError(f"particles and chunk must be >= 1, got {particles} and {chunk}")
    dim = -(max_plate_nesting + 1)
    parts = []
    for lo in range(0, particles, chunk):
        plate = pyro.plate(PARTICLE_PLATE, min(chunk, particles - lo), dim=dim)
        model_trace, guide_trace = get_importance_trace(
            "flat", max_plate_nesting + 1, plate(model), plate(guide), args, kwargs
        )
        lw = trace_log_weights(model_trace, guide_trace, particle_dim=dim, data_plate=data_plate)
        parts.append(lw.log_w)
        del model_trace, guide_trace
    return torch.cat(parts, 0)


def summarise_nll(nll: torch.Tensor, pixels: int, particles: int) -> dict:
    """Summary of per-sequence NLLs ``nll`` (N,) in nats: the ``NLL_KEYS`` plus ``nll`` itself.

    ``pixels`` = T*C*H*W of one sequence; the standard error is std / sqrt(N) (NaN when N = 1).
    """
    n = nll.numel()
    mean = float(nll.mean())
    stderr = float(nll.std() / math.sqrt(n)) if n > 1 else float("nan")
    return {
        "nll_per_sequence": mean,
        "nll_stderr": stderr,
        "nll_per_pixel": mean / pixels,
        "nll_per_pixel_stderr": stderr / pixels,
        "nll_particles": int(particles),
        "nll_sequences": int(n),
        "nll": nll,
    }


def estimate_nll(
    scalor,
    video: torch.Tensor,
    *,
    particles: int = 1000,
    chunk: int = 50,
    batch_size: int = 4,
    disc_pres_prior: float | None = None,
    seed: int | None = None,
    progress: bool = False,
) -> dict:
    """Estimate ``-log p(x)`` of each sequence of ``video`` (B, T, C, H, W) in [0, 1].

    ``particles`` K importance samples per sequence, run ``chunk`` particles times ``batch_size``
    sequences per pass; ``disc_pres_prior`` the discovery presence prior (default: the training
    schedule's value at the checkpoint's step when ``scalor`` came from a checkpoint, else 0.1);
    ``seed`` seeds torch's generator for this call only; ``progress`` shows a progress bar over
    the sequences (on a terminal). Returns :func:`summarise_nll`'s dict:
    mean NLL per sequence and per pixel (nats), their standard errors over sequences, K, N and
    ``nll`` (B,) the per-sequence values.
    """
    cfg = scalor.config
    video = validate_video(
        video, channels=(cfg.channels,), height=cfg.image_size, width=cfg.image_size
    ).to(scalor.device)
    if disc_pres_prior is None:
        train_cfg = getattr(scalor, "train_config", None)
        step = getattr(scalor, "step", 0)
        disc_pres_prior = train_cfg.disc_pres_prior(step) if train_cfg is not None else 0.1
    model, guide = hard_presence_programs(scalor)
    bar = tqdm(total=video.shape[0], unit="seq", desc="nll", disable=None if progress else True)
    with _seeded(seed, video.device), bar:
        nll = []
        for lo in range(0, video.shape[0], batch_size):
            log_w = importance_log_weights(
                model,
                guide,
                video[lo : lo + batch_size],
                particles=particles,
                chunk=chunk,
                disc_pres_prior=disc_pres_prior,
            )
            nll.append(-bound_per_datum(log_w).cpu())
            bar.update(log_w.shape[1])
    return summarise_nll(torch.cat(nll), video[0].numel(), particles)


def estimate_nll_on_split(
    scalor,
    preset: str,
    split: str = "test",
    *,
    num_sequences: int | None = None,
    nll_sequences: int = 50,
    nll_start: int = 0,
    particles: int = 1000,
    chunk: int = 50,
    cache_dir=None,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """:func:`estimate_nll` on ``nll_sequences`` sequences of a dataset split from ``nll_start``.

    ``preset``, ``split``, ``num_sequences`` and ``cache_dir`` select the dataset as in
    :func:`pyro_scalor.data.load_dataset`; a long estimate can be split into ranges
    (``nll_start``) and the per-sequence values concatenated. Returns :func:`estimate_nll`'s
    dict plus ``nll_start`` (seeded: repeatable); ``progress`` as in :func:`estimate_nll`.
    """
    from pyro_scalor.data import load_dataset

    ds = load_dataset(preset, split, num_sequences=num_sequences, cache_dir=cache_dir)
    if not 0 <= nll_start < len(ds):
        raise ValueError(f"nll_start must be in [0, {len(ds)}), got {nll_start}")
    stop = min(nll_start + nll_sequences, len(ds))
    video = torch.stack([ds[i]["video"] for i in range(nll_start, stop)])
    out = estimate_nll(
        scalor, video, particles=particles, chunk=chunk, seed=seed, progress=progress
    )
    out["nll_start"] = nll_start
    return out


def _seeded(seed: int | None, device: torch.device):
    """Context with torch's generators (CPU and ``device``) seeded by ``seed``, then restored."""
    if seed is None:
        return contextlib.nullcontext()
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]

    @contextlib.contextmanager
    def ctx():
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    return ctx()


def format_nll(summary: dict) -> str:
    """Table lines (same layout as the tracking metrics table) of an NLL summary."""
    lines = []
    for k in NLL_KEYS:
        v = summary[k]
        lines.append(f"{k:<22}{v:>10.4g}" if isinstance(v, float) else f"{k:<22}{v:>10}")
    return "\n".join(lines)
