"""Do prior samples look like the data? Object counts, speeds and sizes compared as numbers.

For videos sampled from the prior (:meth:`pyro_scalor.api.Scalor.sample_prior`) and for the
ground truth of a data split, :func:`video_statistics` collects three samples of numbers:

* ``objects_per_frame``: objects present in each frame of each sequence;
* ``speed_px``: per frame, the distance in pixels between the box centres of a track present in
  two consecutive frames;
* ``size_px``: the side ``sqrt(width * height)`` in pixels of each present box.

:func:`compare_statistics` reports each one's means, their ratio and the total variation
distance between the two histograms over fixed bins (:data:`BINS`; the last bin is open).
"""

from __future__ import annotations

import numpy as np

from pyro_scalor.metrics.boxes import box_centers, to_numpy

#: Bin edges per statistic; values at or beyond the last edge count in the last bin.
BINS = {
    "objects_per_frame": np.arange(0.0, 31.0),
    "speed_px": np.arange(0.0, 21.0),
    "size_px": np.arange(0.0, 66.0, 2.0),
}


def video_statistics(boxes, ids, valid) -> dict[str, np.ndarray]:
    """Counts, speeds and sizes of pixel boxes (B, T, N, 4) with track ids (B, T, N) or (B, N)
    (the same objects over time, as in the datasets) and present flags valid (B, T, N)."""
    boxes = to_numpy(boxes, "boxes").astype(np.float64)
    valid = to_numpy(valid, "valid").astype(bool)
    ids = to_numpy(ids, "ids")
    if ids.ndim == 2:
        ids = np.broadcast_to(ids[:, None], valid.shape)
    if boxes.shape[:3] != valid.shape or ids.shape != valid.shape:
        raise ValueError(
            f"boxes (B, T, N, 4), ids and valid (B, T, N) disagree: {boxes.shape}, "
            f"{ids.shape}, {valid.shape}"
        )
    counts = valid.sum(-1).reshape(-1).astype(np.float64)
    wh = np.clip(boxes[..., 2:] - boxes[..., :2], 0.0, None)
    sizes = np.sqrt(wh[..., 0] * wh[..., 1])[valid]
    centers = box_centers(boxes)
    speeds = []
    for b in range(valid.shape[0]):
        for t in range(1, valid.shape[1]):
            for n in np.flatnonzero(valid[b, t]):
                prev = np.flatnonzero(valid[b, t - 1] & (ids[b, t - 1] == ids[b, t, n]))
                if prev.size:
                    speeds.append(np.linalg.norm(centers[b, t, n] - centers[b, t - 1, prev[0]]))
    return {
        "objects_per_frame": counts,
        "speed_px": np.asarray(speeds, dtype=np.float64),
        "size_px": sizes,
    }


def discovery_rates(ids, valid, num_cells: int) -> dict[str, float]:
    """How often objects appear, per discovery cell: ``first`` (objects at the first frame) and
    ``later`` (new track ids per later frame), both divided by ``num_cells``.

    Takes track ids (B, T, K) and present flags (B, T, K), e.g. of :meth:`Scalor.track` on
    training videos: the rates at which the guide discovers objects, which a generation can use
    as the discovery presence prior of the first and of later frames (``disc_pres_prior=[first,
    later]``) so that prior samples hold as many objects as the data.
    """
    ids, valid = to_numpy(ids, "ids"), to_numpy(valid, "valid").astype(bool)
    if ids.shape != valid.shape or ids.ndim != 3:
        raise ValueError(f"ids and valid must both be (B, T, K), got {ids.shape}, {valid.shape}")
    first = valid[:, 0].sum(-1).mean() / num_cells
    # an object is new at t > 0 when no object present at t - 1 carries its id
    seen = (ids[:, 1:, :, None] == ids[:, :-1, None, :]) & valid[:, :-1, None, :]
    new = (valid[:, 1:] & ~seen.any(-1)).sum(-1)  # (B, T - 1)
    later = float(new.mean()) / num_cells if new.size else float("nan")
    return {"first": float(first), "later": later}


def histogram(values, edges) -> np.ndarray:
    """Normalised histogram of ``values`` over ``edges``; the last bin takes everything at or
    beyond the last edge (all zeros for no values)."""
    values = np.asarray(values, dtype=np.float64)
    idx = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 1)
    counts = np.bincount(idx, minlength=len(edges)).astype(np.float64)
    return counts / counts.sum() if counts.sum() > 0 else counts


def total_variation(a, b, edges) -> float:
    """Total variation distance, half the L1 distance, between the histograms of ``a`` and
    ``b`` over ``edges`` (NaN when either is empty)."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(0.5 * np.abs(histogram(a, edges) - histogram(b, edges)).sum())


def compare_statistics(samples: dict, data: dict) -> dict:
    """Per statistic of :func:`video_statistics`: ``samples_mean``, ``data_mean``, ``ratio``
    (samples over data), ``total_variation`` over :data:`BINS` and both sample sizes."""

    def mean(v):
        return float(np.mean(v)) if len(v) else float("nan")

    out = {}
    for name, edges in BINS.items():
        s, d = samples[name], data[name]
        ms, md = mean(s), mean(d)
        out[name] = {
            "samples_mean": ms,
            "data_mean": md,
            "ratio": ms / md if md else float("nan"),
            "total_variation": total_variation(s, d, edges),
            "samples_count": int(len(s)),
            "data_count": int(len(d)),
        }
    return out


def prior_statistics(result, dataset, num_sequences: int | None = None) -> dict:
    """Compare prior samples (a GenerationResult: boxes, ids, valid) with the ground truth of
    the first ``num_sequences`` (default: all) sequences of ``dataset`` (items with boxes,
    ids, visible); see :func:`compare_statistics`."""
    n = len(dataset) if num_sequences is None else min(int(num_sequences), len(dataset))
    items = [dataset[i] for i in range(n)]
    truth = video_statistics(
        np.stack([to_numpy(it["boxes"], "boxes") for it in items]),
        np.stack([to_numpy(it["ids"], "ids") for it in items]),
        np.stack([to_numpy(it["visible"], "visible") for it in items]),
    )
    sampled = video_statistics(result.boxes, result.ids, result.valid)
    return compare_statistics(sampled, truth)


def format_statistics(stats: dict) -> str:
    """A text table of :func:`compare_statistics` output, one line per statistic."""
    lines = [f"{'statistic':<18}{'samples':>9}{'data':>9}{'ratio':>7}{'TV':>7}"]
    for name, s in stats.items():
        lines.append(
            f"{name:<18}{s['samples_mean']:>9.2f}{s['data_mean']:>9.2f}"
            f"{s['ratio']:>7.2f}{s['total_variation']:>7.3f}"
        )
    return "\n".join(lines)
