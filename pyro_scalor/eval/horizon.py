"""Scores of conditional generation: how far imagined objects drift from the real ones.

Conditional generation (the paper's Sec. 5.3, Fig. 6 and Appendix C) infers the first
``observe`` frames of a test sequence with the guide, then lets the model imagine ``horizon``
more frames with its learned transition priors; discovery stays on with a presence prior of 0.1
so that new objects can appear. :func:`horizon_errors` scores it: for objects tracked at the
last observed frame and matched to ground truth there (IoU >= 0.5, Hungarian), the pixel error of
the imagined box centre against the matched true object at every horizon step while it stays
visible, and the pixel MSE of each imagined frame against the real one. Baselines are reported
beside them: objects standing still, the last observed frame repeated, and constant-velocity
extrapolation of each track from its last two observed boxes (:mod:`pyro_scalor.eval.baselines`;
for pixels rendered with the model's decoder over its imagined background). The pictures are
drawn by :mod:`pyro_scalor.viz.generation`.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm.auto import tqdm

from pyro_scalor.eval.baselines import (
    constant_velocity_centers,
    fitted_velocity_centers,
    render_constant_velocity,
)
from pyro_scalor.metrics.boxes import box_centers, iou_matrix, to_numpy

log = logging.getLogger(__name__)

#: Long sequences for conditional generation: observe 5, imagine 5 as in the paper's Fig. 6.
LONG_PRESET = "dsprites-ld-long"


def default_split(seq_len: int) -> tuple[int, int]:
    """Default (observe, horizon) for sequences of ``seq_len`` frames: 5 + 5 when there are at
    least 10 frames (the paper's Fig. 6), else the first half observed and the rest imagined."""
    if seq_len >= 10:
        return 5, 5
    observe = max(1, seq_len // 2)
    return observe, max(1, seq_len - observe)


def resolve_horizon(observe: int | None, horizon: int | None, seq_len: int) -> tuple[int, int]:
    """Fill in a missing observe/horizon for ``seq_len``-frame data and validate both.

    Raises ValueError unless observe >= 1, horizon >= 1 and observe < seq_len (at least one
    imagined frame must have a real counterpart). When observe + horizon > seq_len the
    generation still runs for the whole horizon but only the first ``seq_len - observe``
    imagined frames can be compared (a warning is logged).
    """
    if observe is None and horizon is None:
        observe, horizon = default_split(seq_len)
    elif observe is None:
        observe = max(1, seq_len - horizon)
    elif horizon is None:
        horizon = max(1, seq_len - observe)
    if observe < 1:
        raise ValueError(f"observe must be >= 1 (frames inferred from data), got {observe}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 (frames to imagine), got {horizon}")
    if observe >= seq_len:
        raise ValueError(
            f"observe={observe} leaves no frame of these {seq_len}-frame sequences to compare "
            f"the imagined ones with; use observe <= {seq_len - 1}, or a longer data preset "
            f"(e.g. {LONG_PRESET}, 16 frames)"
        )
    if observe + horizon > seq_len:
        log.warning(
            "observe + horizon = %d exceeds the %d frames of the data: only the first %d "
            "imagined frames are compared with ground truth",
            observe + horizon,
            seq_len,
            seq_len - observe,
        )
    return int(observe), int(horizon)


class HorizonScore:
    """Accumulates per-horizon-step errors of conditional generations against ground truth.

    ``observe`` frames were inferred; imagined step h = 1..``compared`` is frame observe-1+h.
    Feed batches with :meth:`add`; :meth:`summary` returns the JSON-ready dict described in
    :func:`horizon_errors`.
    """

    #: Centre errors accumulated per step (the model and the baselines, over the same pairs),
    #: with their keys in :meth:`summary`.
    CENTRE_ERRORS = {
        "center": "center_error_px",
        "static": "static_center_error_px",
        "cv": "cv_center_error_px",
        "fit": "fitted_velocity_center_error_px",
        "true_fit": "true_fitted_center_error_px",
    }

    def __init__(self, observe: int, compared: int, iou_threshold: float = 0.5) -> None:
        self.observe, self.compared, self.iou_threshold = observe, compared, iou_threshold
        z = np.zeros(compared)
        # centre-error sums per step, over all compared pairs and over those in view
        self.sums = {k: z.copy() for k in self.CENTRE_ERRORS}
        self.in_view = {k: z.copy() for k in self.CENTRE_ERRORS}
        self.center_count, self.in_view_count = z.copy(), z.copy()
        self.errors: list[list[float]] = [[] for _ in range(compared)]  # the model's, per step
        self.lost, self.mse_sum = z.copy(), z.copy()
        self.copy_sum, self.cv_mse_sum = z.copy(), z.copy()
        self.num_sequences = self.cv_sequences = 0
        self.gt_last = self.tracked_last = self.matched = 0

    def add(self, result, gt_boxes, gt_visible, real, cv_frames=None) -> None:
        """Add a batch: a GenerationResult-like object (frames, boxes, ids, valid) of B
        sequences, ground-truth boxes (B, T', O, 4), visible (B, T', O) and real frames
        (B, T', C, H, W) with T' >= observe + compared; ``cv_frames`` (B, >= compared, C, H, W)
        the constant-velocity baseline rendered for the imagined steps, if any."""
        p_boxes = to_numpy(result.boxes, "boxes").astype(np.float64)
        p_ids = to_numpy(result.ids, "ids")
        p_valid = to_numpy(result.valid, "valid").astype(bool)
        frames = to_numpy(result.frames, "frames").astype(np.float64)
        g_boxes = to_numpy(gt_boxes, "gt_boxes").astype(np.float64)
        g_vis = to_numpy(gt_visible, "gt_visible").astype(bool)
        real = to_numpy(real, "real").astype(np.float64)
        t0, n = self.observe - 1, self.compared
        need = self.observe + n
        if p_boxes.shape[1] < need or g_boxes.shape[1] < need or real.shape[1] < need:
            raise ValueError(
                f"need {need} frames of generation and ground truth (observe {self.observe} + "
                f"{n} compared), got {p_boxes.shape[1]} generated and {g_boxes.shape[1]} real"
            )
        steps = slice(t0 + 1, t0 + 1 + n)
        self.mse_sum += ((frames[:, steps] - real[:, steps]) ** 2).mean((2, 3, 4)).sum(0)
        self.copy_sum += ((real[:, t0 : t0 + 1] - real[:, steps]) ** 2).mean((2, 3, 4)).sum(0)
        if cv_frames is not None:
            cv = to_numpy(cv_frames, "cv_frames").astype(np.float64)[:, :n]
            self.cv_mse_sum += ((cv - real[:, steps]) ** 2).mean((2, 3, 4)).sum(0)
            self.cv_sequences += cv.shape[0]
        self.num_sequences += p_boxes.shape[0]
        cv_centers = constant_velocity_centers(p_boxes, p_ids, p_valid, self.observe, n)
        fit_centers = fitted_velocity_centers(p_boxes, p_ids, p_valid, self.observe, n)
        # the same straight line fitted to the true boxes: what extrapolating exact boxes gives
        g_ids = np.broadcast_to(np.arange(g_boxes.shape[2]), g_vis.shape)
        true_fit = fitted_velocity_centers(g_boxes, g_ids, g_vis, self.observe, n)
        inside = clear_of_edges(g_boxes, g_vis, real.shape[-2], real.shape[-1])
        for b in range(p_boxes.shape[0]):
            pi = np.flatnonzero(p_valid[b, t0])
            gi = np.flatnonzero(g_vis[b, t0])
            self.gt_last += gi.size
            self.tracked_last += pi.size
            if pi.size == 0 or gi.size == 0:
                continue
            iou = iou_matrix(p_boxes[b, t0, pi], g_boxes[b, t0, gi])
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] < self.iou_threshold:
                    continue
                self.matched += 1
                k, o = pi[r], gi[c]
                track = p_ids[b, t0, k]
                start = box_centers(p_boxes[b, t0, k])
                for h in range(n):
                    t = t0 + 1 + h
                    if not g_vis[b, t, o]:
                        continue
                    truth = box_centers(g_boxes[b, t, o])
                    slot = np.flatnonzero(p_valid[b, t] & (p_ids[b, t] == track))
                    if slot.size == 0:
                        self.lost[h] += 1
                        continue
                    guesses = {
                        "center": box_centers(p_boxes[b, t, slot[0]]),
                        "static": start,
                        "cv": cv_centers[b, k, h],
                        "fit": fit_centers[b, k, h],
                        "true_fit": true_fit[b, o, h],
                    }
                    self.center_count[h] += 1
                    in_view = bool(inside[b, : t + 1, o].all())
                    self.in_view_count[h] += in_view
                    for name, guess in guesses.items():
                        err = float(np.linalg.norm(guess - truth))
                        if name == "center":
                            self.errors[h].append(err)
                        self.sums[name][h] += err
                        if in_view:
                            self.in_view[name][h] += err

    def summary(self) -> dict:
        """Per-step lists (index h-1 for imagined step h) and totals."""

        def mean(s, c):
            return [float(a) / c_ if c_ > 0 else math.nan for a, c_ in zip(s, c)]

        seqs = np.full(self.compared, self.num_sequences)
        alive = self.center_count + self.lost
        names = self.CENTRE_ERRORS
        in_view = {v: mean(self.in_view[k], self.in_view_count) for k, v in names.items()}
        in_view["center_count"] = [int(c) for c in self.in_view_count]
        return {
            "observe": self.observe,
            "compared_steps": self.compared,
            "num_sequences": self.num_sequences,
            "iou_threshold": self.iou_threshold,
            "gt_objects_last_observed": int(self.gt_last),
            "tracked_objects_last_observed": int(self.tracked_last),
            "matched_objects": int(self.matched),
            "step": list(range(1, self.compared + 1)),
            "frame": list(range(self.observe, self.observe + self.compared)),
            **{v: mean(self.sums[k], self.center_count) for k, v in names.items()},
            "center_count": [int(c) for c in self.center_count],
            "center_error_median_px": [float(np.median(e)) if e else math.nan for e in self.errors],
            "tracks_lost": [int(c) for c in self.lost],
            "tracks_lost_share": mean(self.lost, alive),
            "pixel_mse": mean(self.mse_sum, seqs),
            "copy_last_pixel_mse": mean(self.copy_sum, seqs),
            "cv_pixel_mse": mean(self.cv_mse_sum, np.full(self.compared, self.cv_sequences)),
            "in_view": in_view,
        }


def clear_of_edges(boxes, visible, height: int, width: int) -> np.ndarray:
    """Whether each true box (..., 4) in pixels is visible and clear of the view's edges (no
    side on the border), so it is the whole object rather than the part inside the view."""
    boxes = np.asarray(boxes, dtype=np.float64)
    x0, y0, x1, y1 = np.moveaxis(boxes, -1, 0)
    return np.asarray(visible, bool) & (x0 > 0) & (y0 > 0) & (x1 < width) & (y1 < height)


def _sequence_length(dataset) -> int:
    return int(dataset[0]["video"].shape[0])


def run_conditional(
    scalor,
    dataset,
    observe: int,
    horizon: int,
    num_sequences: int | None = None,
    seed: int | None = 0,
    *,
    batch_size: int = 16,
    iou_threshold: float = 0.5,
    disc_pres_prior: float = 0.1,
    temperature: float = 0.1,
    noise_scale: float = 1.0,
    progress: bool = False,
    max_objects: int | None = None,
    cv_pixels: bool = True,
) -> tuple[dict, dict]:
    """Conditional generation over the first ``num_sequences`` of ``dataset``, scored.

    ``progress`` shows a progress bar over the sequences (on a terminal); ``max_objects`` the
    slot capacity K (default: the trained one); ``cv_pixels`` renders the constant-velocity
    baseline for ``cv_pixel_mse`` (NaN without it). Returns
    ``(errors, example)``: the dict of :func:`horizon_errors` and the first batch as
    ``{"real": videos (B, T', C, H, W), "result": GenerationResult}`` for pictures.
    """
    import pyro
    import torch

    seq_len = _sequence_length(dataset)
    observe, horizon = resolve_horizon(observe, horizon, seq_len)
    compared = min(horizon, seq_len - observe)
    n = len(dataset) if num_sequences is None else min(int(num_sequences), len(dataset))
    if n < 1:
        raise ValueError(f"num_sequences must be >= 1, got {num_sequences}")
    if seed is not None:
        pyro.set_rng_seed(seed)
    score = HorizonScore(observe, compared, iou_threshold)
    example = None
    bar = tqdm(total=n, unit="seq", desc="generate", disable=None if progress else True)
    for lo in range(0, n, batch_size):
        items = [dataset[i] for i in range(lo, min(lo + batch_size, n))]
        real = torch.stack([it["video"] for it in items])
        result = scalor.generate(
            real[:, :observe],
            horizon,
            disc_pres_prior=disc_pres_prior,
            temperature=temperature,
            noise_scale=noise_scale,
            max_objects=max_objects,
        )
        cv_frames = None
        if cv_pixels:
            cv_frames = render_constant_velocity(
                scalor,
                real[:, :observe],
                result,
                compared,
                temperature=temperature,
                disc_pres_prior=disc_pres_prior,
                max_objects=max_objects,
            )
        score.add(
            result,
            torch.stack([it["boxes"] for it in items]),
            torch.stack([it["visible"] for it in items]),
            real,
            cv_frames,
        )
        if example is None:
            example = {"real": real, "result": result}
        bar.update(len(items))
    bar.close()
    errors = score.summary()
    config = getattr(dataset, "config", None)
    errors.update(
        horizon=horizon,
        seed=seed,
        sequence_length=seq_len,
        preset=getattr(config, "name", None),
        split=getattr(dataset, "split", None),
        disc_pres_prior=disc_pres_prior,
        temperature=temperature,
        noise_scale=noise_scale,
    )
    return errors, example


def horizon_errors(
    scalor,
    dataset,
    observe: int | None = None,
    horizon: int | None = None,
    num_sequences: int | None = None,
    seed: int | None = 0,
    **kwargs,
) -> dict:
    """Per-horizon-step errors of conditional generation on ``dataset`` (e.g. a test split).

    For each of the first ``num_sequences`` sequences, the first ``observe`` frames are inferred
    and ``horizon`` more are imagined (:meth:`pyro_scalor.api.Scalor.generate`). At the last
    observed frame, present tracked boxes are matched to visible true boxes (Hungarian on IoU,
    pairs with IoU >= ``iou_threshold`` kept); each matched track id is followed into the imagined
    frames and its box centre compared with its true object's centre at every step where that
    object is visible. Missing observe/horizon default to :func:`default_split` of the data's
    length; only imagined frames with a real counterpart are compared (``compared_steps``).

    Returns a JSON-ready dict: lists over steps h = 1..compared_steps of ``center_error_px``
    (mean pixel distance; NaN with no pair), ``center_error_median_px`` (their median: a few
    tracks that followed another object at the last observed frame, or were found late, weigh
    on the mean), ``center_count`` (pairs compared), ``tracks_lost``
    (true object visible but its track gone) and ``tracks_lost_share`` (that count over the
    matched tracks whose object is visible), ``static_center_error_px`` (baseline: the object
    kept where it was at the last observed frame, same pairs), ``cv_center_error_px`` (baseline:
    constant-velocity extrapolation from the track's last two observed boxes, same pairs),
    ``fitted_velocity_center_error_px`` (baseline: a straight line fitted to all the track's
    observed centres, extrapolated; same pairs), ``true_fitted_center_error_px`` (the same line
    fitted to the true object's observed boxes: what straight-line extrapolation of exact boxes
    gives; not zero, because the data place sprites at whole pixels and a true box is only the
    part inside the view), ``in_view`` (a dict of the same centre errors and ``center_count``
    over the pairs whose true box was clear of the view's edges at every frame up to the one
    compared, where a box centre moves as its object does), ``pixel_mse`` (imagined vs real
    frame, mean over sequences), ``copy_last_pixel_mse`` (baseline: the last observed real
    frame repeated) and ``cv_pixel_mse`` (baseline: the last observed objects moved at constant
    velocity, rendered by the model over its imagined background); plus counts (``matched_objects``,
    ...) and the settings used. Keyword arguments go to :func:`run_conditional` (batch_size,
    iou_threshold, disc_pres_prior, temperature, noise_scale, progress, cv_pixels).
    """
    return run_conditional(scalor, dataset, observe, horizon, num_sequences, seed, **kwargs)[0]


def format_horizon_table(errors: dict) -> str:
    """A text table of :func:`horizon_errors` output, one line per imagined step."""

    def f(v, width=9, digits=3):
        return f"{'-':>{width}}" if v is None or v != v else f"{v:>{width}.{digits}f}"

    lines = [
        f"observed {errors['observe']} frames; {errors['matched_objects']} tracked objects "
        f"matched to ground truth at frame {errors['observe'] - 1} over "
        f"{errors['num_sequences']} sequences",
        f"{'step':>4}{'frame':>6}{'centre px':>10}{'median':>7}{'static px':>10}{'const-v px':>11}"
        f"{'fit-v px':>9}{'true-fit':>9}"
        f"{'pairs':>6}{'lost':>5}{'lost %':>7}{'MSE':>9}{'copy MSE':>9}{'c-v MSE':>9}",
    ]
    nan = [math.nan] * len(errors["step"])
    for i, h in enumerate(errors["step"]):
        share = errors.get("tracks_lost_share", nan)[i]
        lines.append(
            f"{h:>4}{errors['frame'][i]:>6}{f(errors['center_error_px'][i], 10)}"
            f"{f(errors.get('center_error_median_px', nan)[i], 7, 2)}"
            f"{f(errors['static_center_error_px'][i], 10)}"
            f"{f(errors.get('cv_center_error_px', nan)[i], 11)}"
            f"{f(errors.get('fitted_velocity_center_error_px', nan)[i])}"
            f"{f(errors.get('true_fitted_center_error_px', nan)[i])}"
            f"{errors['center_count'][i]:>6}"
            f"{errors['tracks_lost'][i]:>5}{f(100 * share, 7, 1)}"
            f"{f(errors['pixel_mse'][i])}{f(errors['copy_last_pixel_mse'][i])}"
            f"{f(errors.get('cv_pixel_mse', nan)[i])}"
        )
    view = errors.get("in_view")
    if view:
        lines.append("objects clear of the view's edges (centre px: model, const-v, true-fit):")
        for i, h in enumerate(errors["step"]):
            lines.append(
                f"{h:>4}{errors['frame'][i]:>6}{f(view['center_error_px'][i], 10)}"
                f"{f(view['cv_center_error_px'][i], 11)}"
                f"{f(view['true_fitted_center_error_px'][i])}{view['center_count'][i]:>6}"
            )
    return "\n".join(lines)


def prior_summary(result) -> dict:
    """Counts per frame of prior samples: mean present objects and mean newly discovered."""
    valid = to_numpy(result.valid, "valid").astype(bool)
    disc = to_numpy(result.discovered, "discovered").astype(bool)
    return {
        "num_sequences": int(valid.shape[0]),
        "frames": int(valid.shape[1]),
        "objects_per_frame": valid.sum(-1).mean(0).tolist(),
        "discovered_per_frame": (valid & disc).sum(-1).mean(0).tolist(),
    }
