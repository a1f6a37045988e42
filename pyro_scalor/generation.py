"""Generation with a trained SCALOR: prior samples, conditional generation, pictures and numbers.

Conditional generation (the paper's Sec. 5.3, Fig. 6 and Appendix C) infers the first
``observe`` frames of a test sequence with the guide, then lets the model imagine ``horizon``
more frames with its learned transition priors; discovery stays on with a presence prior of 0.1
so that new objects can appear. This module turns :class:`pyro_scalor.api.GenerationResult` into

* pictures like Fig. 6: rows generated scene / background / per-object segmentation coloured by
  track id / trajectories, with a red margin on the imagined frames, plus GIFs;
* numbers (:func:`horizon_errors`): for objects tracked at the last observed frame and matched to
  ground truth there (IoU >= 0.5, Hungarian), the pixel error of the imagined box centre against
  the matched true object at every horizon step while it stays visible, and the pixel MSE of each
  imagined frame against the real one; two trivial baselines (objects standing still, the last
  observed frame repeated) are reported beside them.

Command line::

    pyro-scalor generate CKPT --prior --frames 10 --out outputs/generation
    pyro-scalor generate CKPT --observe 5 --horizon 5 --preset dsprites-ld-long \\
        --out outputs/generation --json outputs/generation/horizon.json
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Legend label of the red margin drawn around imagined frames.
IMAGINED_LABEL = "imagined (generated) frame"
#: Long sequences for conditional generation: observe 5, imagine 5 as in the paper's Fig. 6.
LONG_PRESET = "dsprites-ld-long"
_RED = np.array([0.84, 0.15, 0.16], dtype=np.float32)


# --------------------------------------------------------------------------------------------
# pictures
# --------------------------------------------------------------------------------------------
def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _hwc(frames) -> np.ndarray:
    """(T, C, H, W) tensor or array to float32 (T, H, W, 3) in [0, 1]."""
    arr = _np(frames).astype(np.float32)
    arr = np.moveaxis(arr, -3, -1)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, -1)
    return np.clip(arr, 0.0, 1.0)


def segmentation_frames(masks, boxes, ids, valid, depth) -> np.ndarray:
    """Per-object segmentation of one sequence, coloured by track id, on black.

    Takes the foreground mask (T, 1, H, W), pixel boxes (T, K, 4), ids, valid and depth (T, K).
    Each pixel takes the colour of the frontmost (smallest depth, as in the renderer) present
    object whose box contains it, scaled by the foreground mask there, so the rendered shapes
    show in their track's colour. Returns float32 (T, H, W, 3).
    """
    from pyro_scalor.viz import colors_for_ids

    masks, boxes = _np(masks).astype(np.float32), _np(boxes).astype(np.float32)
    ids, valid, depth = _np(ids), _np(valid).astype(bool), _np(depth).astype(np.float32)
    n_frames, height, width = masks.shape[0], masks.shape[-2], masks.shape[-1]
    py = np.arange(height, dtype=np.float32)[:, None] + 0.5
    px = np.arange(width, dtype=np.float32)[None, :] + 0.5
    out = np.zeros((n_frames, height, width, 3), dtype=np.float32)
    for t in range(n_frames):
        x0, y0, x1, y1 = (boxes[t, :, i, None, None] for i in range(4))
        inside = (px >= x0) & (px < x1) & (py >= y0) & (py < y1) & valid[t, :, None, None]
        key = np.where(inside, depth[t, :, None, None], np.inf)  # (K, H, W)
        front = key.argmin(0)
        covered = inside.any(0)
        colors = colors_for_ids(ids[t]).astype(np.float32)  # (K, 3)
        rgb = np.where(covered[..., None], colors[front], 0.6)  # uncovered mask: grey
        out[t] = rgb * masks[t, 0, :, :, None]
    return np.clip(out, 0.0, 1.0)


def _draw_segment(canvas: np.ndarray, a, b, color) -> None:
    h, w = canvas.shape[:2]
    n = int(max(abs(b[0] - a[0]), abs(b[1] - a[1])) * 2) + 2
    xs = np.clip(np.rint(np.linspace(a[0], b[0], n) - 0.5).astype(int), 0, w - 1)
    ys = np.clip(np.rint(np.linspace(a[1], b[1], n) - 0.5).astype(int), 0, h - 1)
    canvas[ys, xs] = color


def trajectory_frames(boxes, ids, valid, height: int, width: int) -> np.ndarray:
    """Box-centre trajectories up to each frame, one colour per track id, on black.

    Takes pixel boxes (T, K, 4), ids and valid (T, K). Frame t shows every track's path over
    frames 0..t (a line joins consecutive frames where the track is present) and a 3 x 3 dot
    where each present object is at t. Returns float32 (T, H, W, 3).
    """
    from pyro_scalor.metrics import box_centers
    from pyro_scalor.viz import color_for_id

    boxes, ids, valid = _np(boxes), _np(ids), _np(valid).astype(bool)
    centers = box_centers(boxes.astype(np.float64))
    n_frames = boxes.shape[0]
    paths = np.zeros((height, width, 3), dtype=np.float32)
    out = np.zeros((n_frames, height, width, 3), dtype=np.float32)
    last: dict[int, tuple[int, np.ndarray]] = {}
    for t in range(n_frames):
        dots = []
        for k in np.flatnonzero(valid[t]):
            track = int(ids[t, k])
            color = np.asarray(color_for_id(track), dtype=np.float32)
            c = centers[t, k]
            prev = last.get(track)
            if prev is not None and prev[0] == t - 1:
                _draw_segment(paths, prev[1], c, color)
            last[track] = (t, c)
            dots.append((c, color))
        frame = paths.copy()
        for c, color in dots:
            x = int(np.clip(np.floor(c[0]), 0, width - 1))
            y = int(np.clip(np.floor(c[1]), 0, height - 1))
            frame[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2] = color
        out[t] = frame
    return out


def _with_border(frames: np.ndarray, marked, width: int = 2) -> np.ndarray:
    """Copy of frames (T, H, W, 3) with a red border of ``width`` pixels on the ``marked``."""
    out = frames.copy()
    for t in marked:
        out[t, :width], out[t, -width:] = _RED, _RED
        out[t, :, :width], out[t, :, -width:] = _RED, _RED
    return out


def _pad_frames(frames: np.ndarray, n_frames: int) -> np.ndarray:
    """Pad frames (T, H, W, 3) with mid-grey frames to ``n_frames`` (missing ground truth)."""
    if frames.shape[0] >= n_frames:
        return frames[:n_frames]
    pad = np.full((n_frames - frames.shape[0],) + frames.shape[1:], 0.5, dtype=frames.dtype)
    return np.concatenate([frames, pad])


def generation_rows(result, index: int = 0, real=None) -> dict[str, np.ndarray]:
    """The rows of a Fig. 6-style grid for sequence ``index`` of a GenerationResult.

    Rows: ``real`` (only if ``real`` frames (T', C, H, W) are given; grey where the data has no
    frame), ``generated`` (observed frames reconstructed, then imagined ones), ``background``,
    ``segmentation`` (see :func:`segmentation_frames`), ``trajectories`` (see
    :func:`trajectory_frames`) and ``boxes`` (generated frames, for the boxes). Each value is
    float32 (T, H, W, 3).
    """
    r, i = result, index
    n_frames, height, width = r.frames.shape[1], r.frames.shape[-2], r.frames.shape[-1]
    rows: dict[str, np.ndarray] = {}
    if real is not None:
        rows["real"] = _pad_frames(_hwc(real), n_frames)
    generated = _hwc(r.frames[i])
    rows["generated"] = generated
    rows["background"] = _hwc(r.background[i])
    rows["segmentation"] = segmentation_frames(
        r.masks[i], r.boxes[i], r.ids[i], r.valid[i], r.depth[i]
    )
    rows["trajectories"] = trajectory_frames(r.boxes[i], r.ids[i], r.valid[i], height, width)
    rows["boxes"] = generated
    return rows


def write_generation_pictures(
    result,
    out_dir: str | Path,
    *,
    real=None,
    max_sequences: int = 3,
    prefix: str = "generation",
) -> list[Path]:
    """Write pictures of up to ``max_sequences`` sequences of a GenerationResult.

    Per sequence i: ``{prefix}_{i}.png`` (the grid of :func:`generation_rows`, red margin on the
    imagined frames, box colour = track id, white dot = discovered at that frame),
    ``{prefix}_{i}_trajectories.png`` (whole-sequence trajectories; red rings mark imagined
    positions) and ``{prefix}_{i}.gif`` (real | generated | segmentation | trajectories, red
    border on imagined frames). ``real`` (B, T', C, H, W) adds the ground-truth row.
    """
    from pyro_scalor.metrics import box_centers
    from pyro_scalor.viz import plot_sequence_grid, plot_trajectories, save_figure, save_gif
    from pyro_scalor.viz.figures import MARGIN_COLOR

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_frames = result.frames.shape[1]
    imagined = list(range(result.observed, n_frames))
    kind = (
        "prior sample"
        if result.observed == 0
        else (f"observed {result.observed} frames, imagined {n_frames - result.observed}")
    )
    paths: list[Path] = []
    for i in range(min(max_sequences, result.frames.shape[0])):
        rows = generation_rows(result, i, None if real is None else real[i])
        boxes, ids = _np(result.boxes[i]), _np(result.ids[i])
        valid, discovered = _np(result.valid[i]), _np(result.discovered[i])
        png = out_dir / f"{prefix}_{i}.png"
        plot_sequence_grid(
            rows,
            path=png,
            boxes=boxes,
            ids=ids,
            valid=valid,
            discovered=discovered,
            title=f"{prefix} {i}: {kind}" + (" (red margin = imagined)" if imagined else ""),
            margin_frames=imagined,
            margin_label=IMAGINED_LABEL,
        )
        fig = plot_trajectories(None, boxes, ids, valid)
        ax = fig.axes[0]
        ax.set_xlim(0, result.frames.shape[-1])
        ax.set_ylim(result.frames.shape[-2], 0)
        if imagined:
            sel = valid[imagined].astype(bool)
            pts = box_centers(boxes[imagined].astype(np.float64))[sel]
            ring = ax.scatter(
                pts[:, 0],
                pts[:, 1],
                s=40,
                facecolors="none",
                edgecolors=MARGIN_COLOR,
                linewidths=1.2,
                label="imagined position",
                zorder=5,
            )
            ax.legend(handles=[ring], loc="lower right", fontsize=7)
        traj = save_figure(fig, out_dir / f"{prefix}_{i}_trajectories.png")
        panels = [
            rows[k] for k in ("real", "generated", "segmentation", "trajectories") if k in rows
        ]
        strip = np.concatenate([_with_border(p, imagined) for p in panels], axis=2)
        strip = strip.repeat(2, axis=1).repeat(2, axis=2)
        gif = save_gif(strip, out_dir / f"{prefix}_{i}.gif", fps=2)
        paths += [png, traj, gif]
    return paths


# --------------------------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------------------------
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

    def __init__(self, observe: int, compared: int, iou_threshold: float = 0.5) -> None:
        self.observe, self.compared, self.iou_threshold = observe, compared, iou_threshold
        z = np.zeros(compared)
        self.center_sum, self.center_count, self.static_sum = z.copy(), z.copy(), z.copy()
        self.lost, self.mse_sum, self.copy_sum = z.copy(), z.copy(), z.copy()
        self.num_sequences = 0
        self.gt_last = self.tracked_last = self.matched = 0

    def add(self, result, gt_boxes, gt_visible, real) -> None:
        """Add a batch: a GenerationResult-like object (frames, boxes, ids, valid) of B
        sequences, ground-truth boxes (B, T', O, 4), visible (B, T', O) and real frames
        (B, T', C, H, W) with T' >= observe + compared."""
        from scipy.optimize import linear_sum_assignment

        from pyro_scalor.metrics import box_centers, iou_matrix

        p_boxes, p_ids = _np(result.boxes).astype(np.float64), _np(result.ids)
        p_valid, frames = _np(result.valid).astype(bool), _np(result.frames).astype(np.float64)
        g_boxes, g_vis = _np(gt_boxes).astype(np.float64), _np(gt_visible).astype(bool)
        real = _np(real).astype(np.float64)
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
        self.num_sequences += p_boxes.shape[0]
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
                    pred = box_centers(p_boxes[b, t, slot[0]])
                    self.center_sum[h] += float(np.linalg.norm(pred - truth))
                    self.static_sum[h] += float(np.linalg.norm(start - truth))
                    self.center_count[h] += 1

    def summary(self) -> dict:
        """Per-step lists (index h-1 for imagined step h) and totals."""

        def mean(s, c):
            return [float(a) / c_ if c_ > 0 else math.nan for a, c_ in zip(s, c)]

        seqs = np.full(self.compared, self.num_sequences)
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
            "center_error_px": mean(self.center_sum, self.center_count),
            "center_count": [int(c) for c in self.center_count],
            "tracks_lost": [int(c) for c in self.lost],
            "static_center_error_px": mean(self.static_sum, self.center_count),
            "pixel_mse": mean(self.mse_sum, seqs),
            "copy_last_pixel_mse": mean(self.copy_sum, seqs),
        }


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
) -> tuple[dict, dict]:
    """Conditional generation over the first ``num_sequences`` of ``dataset``, scored.

    Returns ``(errors, example)``: the dict of :func:`horizon_errors` and the first batch as
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
    for lo in range(0, n, batch_size):
        items = [dataset[i] for i in range(lo, min(lo + batch_size, n))]
        real = torch.stack([it["video"] for it in items])
        result = scalor.generate(
            real[:, :observe],
            horizon,
            disc_pres_prior=disc_pres_prior,
            temperature=temperature,
            noise_scale=noise_scale,
        )
        score.add(
            result,
            torch.stack([it["boxes"] for it in items]),
            torch.stack([it["visible"] for it in items]),
            real,
        )
        if example is None:
            example = {"real": real, "result": result}
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
    (mean pixel distance; NaN with no pair), ``center_count`` (pairs compared), ``tracks_lost``
    (true object visible but its track gone), ``static_center_error_px`` (baseline: the object
    kept where it was at the last observed frame, same pairs), ``pixel_mse`` (imagined vs real
    frame, mean over sequences) and ``copy_last_pixel_mse`` (baseline: the last observed real
    frame repeated); plus counts (``matched_objects``, ...) and the settings used. Keyword
    arguments go to :func:`run_conditional` (batch_size, iou_threshold, disc_pres_prior,
    temperature).
    """
    return run_conditional(scalor, dataset, observe, horizon, num_sequences, seed, **kwargs)[0]


def format_horizon_table(errors: dict) -> str:
    """A text table of :func:`horizon_errors` output, one line per imagined step."""

    def f(v, width=9):
        return f"{'-':>{width}}" if v is None or v != v else f"{v:>{width}.3f}"

    lines = [
        f"observed {errors['observe']} frames; {errors['matched_objects']} tracked objects "
        f"matched to ground truth at frame {errors['observe'] - 1} over "
        f"{errors['num_sequences']} sequences",
        f"{'step':>4}{'frame':>6}{'centre px':>10}{'static px':>10}{'pairs':>6}{'lost':>5}"
        f"{'MSE':>9}{'copy MSE':>9}",
    ]
    for i, h in enumerate(errors["step"]):
        lines.append(
            f"{h:>4}{errors['frame'][i]:>6}{f(errors['center_error_px'][i], 10)}"
            f"{f(errors['static_center_error_px'][i], 10)}{errors['center_count'][i]:>6}"
            f"{errors['tracks_lost'][i]:>5}{f(errors['pixel_mse'][i])}"
            f"{f(errors['copy_last_pixel_mse'][i])}"
        )
    return "\n".join(lines)


def prior_summary(result) -> dict:
    """Counts per frame of prior samples: mean present objects and mean newly discovered."""
    valid, disc = _np(result.valid).astype(bool), _np(result.discovered).astype(bool)
    return {
        "num_sequences": int(valid.shape[0]),
        "frames": int(valid.shape[1]),
        "objects_per_frame": valid.sum(-1).mean(0).tolist(),
        "discovered_per_frame": (valid & disc).sum(-1).mean(0).tolist(),
    }


def _clean(value):
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def save_json(data: dict, path: str | Path) -> Path:
    """Write ``data`` as indented JSON with NaN as null (also inside lists); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(data), indent=2, sort_keys=True))
    return path


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------
def register(sub) -> None:
    """Add the ``generate`` sub-command."""
    from pyro_scalor.train.cli import _positive_float, _positive_int

    p = sub.add_parser(
        "generate",
        help="prior samples or conditional generation (observe, then imagine) with pictures",
        description=(
            "Prior sampling (--prior --frames N) or conditional generation: infer the first "
            "--observe frames of test sequences, imagine --horizon more, write Fig. 6-style "
            "pictures (red margin = imagined) and per-step errors against ground truth."
        ),
    )
    p.add_argument("checkpoint", type=Path, help="checkpoint file or run directory")
    p.add_argument("--prior", action="store_true", help="sample from the prior from t = 0")
    p.add_argument("--frames", type=_positive_int, help="frames per prior sample (default 8)")
    p.add_argument("--observe", type=int, help="observed frames (default: from the data)")
    p.add_argument("--horizon", type=int, help="imagined frames (default: from the data)")
    p.add_argument("--preset", help="data preset (default: the checkpoint's training data)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument(
        "--num-sequences",
        type=_positive_int,
        help="sequences to generate (default: 4 prior samples; 64 test sequences scored)",
    )
    p.add_argument("--pictures", type=int, default=3, help="sequences to draw (default 3)")
    p.add_argument(
        "--disc-pres-prior",
        type=_positive_float,
        default=0.1,
        help="discovery presence prior while imagining (paper: 0.1)",
    )
    p.add_argument(
        "--temperature", type=_positive_float, default=0.1, help="relaxed-presence temperature"
    )
    p.add_argument(
        "--noise-scale",
        type=float,
        default=1.0,
        help="multiplies the std of sampled Gaussian latents (1 = the model, 0 = prior means)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=_positive_int, default=16)
    p.add_argument("--out", type=Path, default=Path("outputs/generation"), help="pictures")
    p.add_argument("--json", type=Path, help="write the numbers here")
    p.add_argument("--device", default="auto")
    p.add_argument("--cache-dir", type=Path, help="dataset cache directory")
    p.set_defaults(func=run_generate)


def run_generate(args) -> int:
    """Run ``pyro-scalor generate``; returns an exit code."""
    from pyro_scalor.cli import CliError

    if args.pictures < 0:
        raise CliError(f"--pictures must be >= 0, got {args.pictures}")
    if not args.noise_scale >= 0:
        raise CliError(f"--noise-scale must be >= 0, got {args.noise_scale}")
    if args.prior:
        wrong = [f"--{k}" for k in ("observe", "horizon", "preset") if getattr(args, k) is not None]
        if wrong:
            raise CliError(
                f"{', '.join(wrong)} only apply to conditional generation; drop them or --prior"
            )
    else:
        if args.frames is not None:
            raise CliError(
                "--frames is for --prior sampling; conditional generation takes "
                "--observe and --horizon"
            )
        for name in ("observe", "horizon"):
            value = getattr(args, name)
            if value is not None and value < 1:
                raise CliError(f"--{name} must be >= 1, got {value}")

    from pyro_scalor.api import Scalor
    from pyro_scalor.train.cli import resolve_device

    scalor = Scalor.from_checkpoint(args.checkpoint, device=resolve_device(args.device))
    scalor.nets.eval()
    if args.prior:
        result = scalor.sample_prior(
            args.num_sequences or 4,
            args.frames or 8,
            disc_pres_prior=args.disc_pres_prior,
            temperature=args.temperature,
            seed=args.seed,
            noise_scale=args.noise_scale,
        )
        numbers = prior_summary(result)
        numbers.update(
            mode="prior",
            seed=args.seed,
            disc_pres_prior=args.disc_pres_prior,
            noise_scale=args.noise_scale,
        )
        per_frame = ", ".join(f"{v:.1f}" for v in numbers["objects_per_frame"])
        print(
            f"prior samples: {numbers['num_sequences']} x {numbers['frames']} frames; "
            f"mean objects per frame: {per_frame}"
        )
        paths = write_generation_pictures(
            result, args.out, max_sequences=args.pictures, prefix="prior"
        )
    else:
        from pyro_scalor.data import get_preset, load_dataset

        preset = args.preset or scalor.train_config.data_preset
        available = get_preset(preset).num_sequences(args.split)
        n = min(args.num_sequences or 64, available)
        if args.num_sequences and args.num_sequences > available:
            log.warning(
                "the %s split of %s has %d sequences; using them all", args.split, preset, available
            )
        dataset = load_dataset(preset, args.split, num_sequences=n, cache_dir=args.cache_dir)
        numbers, example = run_conditional(
            scalor,
            dataset,
            args.observe,
            args.horizon,
            n,
            args.seed,
            batch_size=args.batch_size,
            disc_pres_prior=args.disc_pres_prior,
            temperature=args.temperature,
            noise_scale=args.noise_scale,
        )
        numbers["mode"] = "conditional"
        print(
            f"conditional generation on {preset} {args.split}: observe {numbers['observe']}, "
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
    for path in paths:
        print(f"wrote {path}")
    if args.json:
        print(f"wrote {save_json(numbers, args.json)}")
    return 0
