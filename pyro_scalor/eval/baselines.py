"""Constant-velocity extrapolation: the strong baseline of conditional generation.

Objects in the moving-sprite data move at constant velocity inside the view, so a model that has
learned the data's dynamics should do about as well as extrapolating each tracked object from
its last two observed boxes. Two forms of that baseline are scored beside the model's imagined
frames (:class:`pyro_scalor.eval.horizon.HorizonScore`):

* :func:`constant_velocity_centers`: box centres of the tracks present at the last observed
  frame, moved by their last observed displacement per frame (an object seen only at the last
  observed frame stands still);
* :func:`fitted_velocity_centers`: the same tracks, moved along the least-squares line through
  all their observed centres: how far a model could get that estimates each object's velocity
  (and position) from every observed frame rather than the last two, whose boxes are noisy;
* :func:`render_constant_velocity`: the same objects (the guide's latents at the last observed
  frame, what, depth and presence kept) moved by that displacement and rendered with the model's
  own decoder over the model's imagined background, so that the pixel comparison with the
  imagined frames is of dynamics only.
"""

from __future__ import annotations

import numpy as np

from pyro_scalor.metrics.boxes import box_centers, to_numpy


def constant_velocity_centers(boxes, ids, valid, observe: int, horizon: int) -> np.ndarray:
    """Extrapolated centres (B, K, horizon, 2) of the slots of the last observed frame.

    Takes pixel boxes (B, T, K, 4), track ids (B, T, K) and valid (B, T, K) with T >= observe.
    For the slot k present at frame t0 = observe - 1 with track id j, the velocity is
    ``(c_t0 - c_s) / (t0 - s)`` for the latest earlier observed frame s where track j is
    present (zero if there is none), and the centre at imagined step h = 1..horizon is
    ``c_t0 + h * velocity``. Slots absent at t0 get NaN.
    """
    vel = constant_velocities(boxes, ids, valid, observe)
    start = box_centers(to_numpy(boxes, "boxes")[:, observe - 1].astype(np.float64))
    steps = np.arange(1, horizon + 1, dtype=np.float64)[None, None, :, None]
    return start[:, :, None] + steps * vel[:, :, None]


def constant_velocities(boxes, ids, valid, observe: int) -> np.ndarray:
    """Per-frame displacements (B, K, 2) in pixels of the slots present at frame observe - 1
    (see :func:`constant_velocity_centers`); NaN for slots absent there."""
    boxes, ids, valid, centers = _tracks(boxes, ids, valid, observe)
    t0 = observe - 1
    vel = np.full(boxes.shape[:1] + boxes.shape[2:3] + (2,), np.nan)
    for b, k in zip(*np.nonzero(valid[:, t0])):
        vel[b, k] = 0.0
        for s in range(t0 - 1, -1, -1):
            same = np.flatnonzero(valid[b, s] & (ids[b, s] == ids[b, t0, k]))
            if same.size:
                vel[b, k] = (centers[b, t0, k] - centers[b, s, same[0]]) / (t0 - s)
                break
    return vel


def _tracks(boxes, ids, valid, observe: int):
    """Boxes, ids and valid as numpy arrays with the box centres (B, T, K, 2), after checking
    that ``observe`` is a frame count within the boxes' T."""
    boxes = to_numpy(boxes, "boxes").astype(np.float64)
    if not 1 <= observe <= boxes.shape[1]:
        raise ValueError(f"observe must be in 1..{boxes.shape[1]}, got {observe}")
    ids = to_numpy(ids, "ids")
    valid = to_numpy(valid, "valid").astype(bool)
    return boxes, ids, valid, box_centers(boxes)


def fitted_velocity_centers(boxes, ids, valid, observe: int, horizon: int) -> np.ndarray:
    """Extrapolated centres (B, K, horizon, 2) from a straight-line fit to each track's history.

    Same inputs as :func:`constant_velocity_centers`. For the slot k present at frame
    t0 = observe - 1 with track id j, the centres of track j at the observed frames s <= t0
    where it is present are fitted by least squares as ``a + v * s`` (per coordinate); the centre
    at imagined step h is ``a + v * (t0 + h)``. A track seen at one frame only stands still.
    Slots absent at t0 get NaN.
    """
    boxes, ids, valid, centers = _tracks(boxes, ids, valid, observe)
    t0 = observe - 1
    out = np.full(boxes.shape[:1] + boxes.shape[2:3] + (horizon, 2), np.nan)
    future = t0 + np.arange(1, horizon + 1, dtype=np.float64)
    for b, k in zip(*np.nonzero(valid[:, t0])):
        seen = valid[b, : t0 + 1] & (ids[b, : t0 + 1] == ids[b, t0, k])  # (t0 + 1, K)
        frames, slots = np.nonzero(seen)
        if frames.size < 2:
            out[b, k] = centers[b, t0, k]
            continue
        slope, intercept = np.polyfit(frames.astype(np.float64), centers[b, frames, slots], 1)
        out[b, k] = intercept + future[:, None] * slope
    return out


def last_observed_slots(scalor, video, *, temperature: float = 0.1, max_objects=None, **kw):
    """The K slots of the guide at the last frame of ``video`` (B, T, C, H, W): a dict of
    ``what`` (B, K, Dw), ``box`` (B, K, 4) attention windows (sx, sy, cx, cy), ``presence``
    (B, K), ``depth`` (B, K, 1) and ``ids`` (B, K), as the model renders them.

    Runs the guide with posterior modes, as :meth:`pyro_scalor.api.Scalor.generate` does for
    the observed frames; ``kw`` may hold ``disc_pres_prior`` and ``tracking``. The appearance is
    read from the trace: a slot discovered at that frame holds its grid cell's ``disc_what``
    sample (cell = id - 1 - t * cells), a propagated one the ``prop_what`` sample of the slot
    that carried its id at the frame before.
    """
    import pyro.poutine as poutine
    import torch

    from pyro_scalor.model import sites
    from pyro_scalor.model.records import stack_frames

    tracking = kw.pop("tracking", None) or scalor.tracking
    _, guide = scalor.inference_programs(tracking, max_objects)
    video = video.to(scalor.device)
    record: list = []
    with torch.no_grad():
        trace = poutine.trace(guide).get_trace(
            video,
            deterministic=True,
            discovery_threshold=tracking.discovery_threshold,
            record=record,
            temperature=temperature,
            **kw,
        )
    frames = stack_frames(record)
    t0 = video.shape[1] - 1
    ids, discovered = frames.ids[:, t0], frames.discovered[:, t0]
    cells = scalor.config.num_cells
    disc_what = trace.nodes[sites.disc("what", t0)]["value"]  # (B, cells, Dw)
    cell = (ids - 1 - t0 * cells).clamp(0, cells - 1)
    what = _take(disc_what, cell)
    if t0 > 0:
        prev_ids = frames.ids[:, t0 - 1]
        source = (ids[:, :, None] == prev_ids[:, None, :]).float().argmax(-1)  # (B, K)
        prop_what = _take(trace.nodes[sites.prop("what", t0)]["value"], source)
        what = torch.where(discovered[..., None], what, prop_what)
    return {
        "what": what,
        "box": frames.box[:, t0],
        "presence": frames.presence[:, t0],
        "depth": frames.depth[:, t0, :, None],
        "ids": ids,
    }


def _take(values, index):
    """``values`` (B, N, D) gathered at ``index`` (B, K) to (B, K, D)."""
    return values.gather(1, index[..., None].expand(index.shape + values.shape[-1:]))


def render_slots(scalor, slots: dict, shifts, background):
    """Frames (B, S, C, H, W) of ``slots`` (:func:`last_observed_slots`) moved by ``shifts``
    (B, S, K, 2) pixels (x, y) and composited over ``background`` (B, S, C, H, W) with the
    model's decoder and rendering (:mod:`pyro_scalor.model.render`)."""
    import torch

    from pyro_scalor.model.render import composite, decode_glimpses, object_layers

    size = scalor.config.image_size
    device = slots["what"].device
    shifts = torch.as_tensor(shifts, dtype=torch.float32, device=device)
    background = torch.as_tensor(background, dtype=torch.float32, device=device)
    with torch.no_grad():
        glimpses = decode_glimpses(scalor.nets.glimpse_decoder, slots["what"])
        glimpses = glimpses[:, None].expand(shifts.shape[:3] + glimpses.shape[2:])
        box = slots["box"][:, None].expand(shifts.shape[:3] + (4,)).clone()
        box[..., 2:] += shifts * (2.0 / size)  # pixels to the [-1, 1] frame
        rgb, alpha = object_layers(glimpses, box, size, size)
        frame, _, _ = composite(
            rgb, alpha, slots["presence"][:, None], slots["depth"][:, None], background
        )
    return frame


def render_constant_velocity(scalor, video, result, horizon: int, **kw):
    """The constant-velocity baseline rendered for ``horizon`` imagined steps: (B, horizon, C,
    H, W) frames of the last observed slots of ``video`` (B, T, C, H, W), each moved by
    h times its track's displacement per frame (:func:`constant_velocities` of the tracked
    boxes in ``result``, a GenerationResult of that video; zero for slots without a track), over
    ``result``'s imagined background. ``kw`` goes to :func:`last_observed_slots`."""
    import torch

    observe = video.shape[1]
    slots = last_observed_slots(scalor, video, **kw)
    vel = constant_velocities(result.boxes, result.ids, result.valid, observe)
    vel = np.nan_to_num(vel, nan=0.0)
    ids_t0 = to_numpy(result.ids, "ids")[:, observe - 1]
    slot_ids = to_numpy(slots["ids"], "ids")
    per_slot = np.zeros(slot_ids.shape + (2,))
    for b, k in zip(*np.nonzero(slot_ids)):
        match = np.flatnonzero(ids_t0[b] == slot_ids[b, k])
        if match.size:
            per_slot[b, k] = vel[b, match[0]]
    steps = np.arange(1, horizon + 1, dtype=np.float64)[None, :, None, None]
    shifts = steps * per_slot[:, None]
    background = result.background[:, observe : observe + horizon]
    return render_slots(scalor, slots, torch.from_numpy(shifts), background)
