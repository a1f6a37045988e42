"""Procedural moving-object videos with ground truth: sampling, bouncing motion and rendering.

Each sequence is drawn from its own random stream, seeded by ``(config.seed, split id, index)``
through ``np.random.SeedSequence``, so any sequence can be regenerated alone and the train, val
and test streams never share a seed.

Geometry: an object is a square alpha patch whose top-left corner moves in environment
coordinates in ``[0, env_size - patch side]`` on both axes, reflecting off the walls. The view
is the central ``image_size`` square. Objects are composited back to front in a random depth
order ("over": ``pixel += alpha * (colour - pixel)``). Ground truth per frame: the tight box of
each object's drawn pixels that fall inside the view (whether or not another object hides
them), in view pixels ``(x_min, y_min, x_max, y_max)`` with max exclusive, and ``visible``
when that set is non-empty.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from pyro_scalor.data.background import moving_background
from pyro_scalor.data.config import SPLITS, DataConfig
from pyro_scalor.data.sprites import SpriteBank, build_digit_bank, build_shape_bank
from pyro_scalor.validation import check_choice

logger = logging.getLogger(__name__)

#: Bump whenever generated pixels or ground truth change for the same config: it keys the cache.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class Scene:
    """The sampled content of one sequence (n objects), before rendering.

    Per object: ``size`` (bank key), ``sprite`` (index into the bank's stack for that size),
    ``colour`` (RGB float), ``depth`` (drawing rank, 0 drawn first), ``birth`` (first frame);
    per frame and object: ``positions`` and ``velocities`` (T, n, 2) as (x, y) of the patch's
    top-left corner in environment pixels, and ``alive`` (T, n).
    """

    size: np.ndarray
    sprite: np.ndarray
    colour: np.ndarray
    depth: np.ndarray
    birth: np.ndarray
    patch_side: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    alive: np.ndarray

    @property
    def num_objects(self) -> int:
        """Number n of objects in the sequence."""
        return int(self.size.shape[0])


@dataclass(frozen=True)
class SequenceData:
    """One rendered sequence: ``video`` uint8 (T, H, W, 3); ``boxes`` float32 (T, O, 4);
    ``ids`` int64 (O,), 0 for padding slots; ``visible`` bool (T, O); and its ``scene``."""

    video: np.ndarray
    boxes: np.ndarray
    ids: np.ndarray
    visible: np.ndarray
    scene: Scene


def sequence_rng(config: DataConfig, split: str, index: int) -> np.random.Generator:
    """The random stream of sequence ``index`` of ``split``: independent of every other one."""
    check_choice(split, SPLITS, "split")
    if index < 0:
        raise ValueError(f"sequence index must be >= 0, got {index}")
    return np.random.default_rng(np.random.SeedSequence([config.seed, SPLITS[split], index]))


def build_bank(config: DataConfig, split: str) -> SpriteBank:
    """The sprite bank for ``config`` (MNIST banks hold only the images reserved for ``split``)."""
    sizes = tuple(range(config.min_size, config.max_size + 1))
    if config.objects == "mnist":
        return build_digit_bank(config.digits, split, sizes)
    return build_shape_bank(config.shapes, sizes)


def bounce(start: np.ndarray, velocity: np.ndarray, steps: np.ndarray, limit: np.ndarray):
    """Constant-velocity motion reflecting off the walls 0 and ``limit``, in closed form.

    Takes start positions and velocities (n, 2), elapsed steps (T, n) (negative: not born) and
    upper walls (n,); returns positions and velocities after bouncing, each (T, n, 2).
    """
    span = 2.0 * limit[None, :, None]
    unfolded = start[None] + velocity[None] * np.maximum(steps, 0)[..., None]
    phase = np.mod(unfolded, span)
    forward = phase <= span / 2
    positions = np.where(forward, phase, span - phase)
    velocities = np.where(forward, velocity[None], -velocity[None])
    return positions, velocities


def sample_scene(config: DataConfig, bank: SpriteBank, rng: np.random.Generator) -> Scene:
    """Draw the objects of one sequence and their trajectories from ``rng``."""
    t_len = config.seq_len
    if config.discovery_steps:
        counts = rng.integers(
            config.min_objects, config.max_objects + 1, size=len(config.discovery_steps)
        )
        birth = np.repeat(np.asarray(config.discovery_steps), counts)
    else:
        n = int(rng.integers(config.min_objects, config.max_objects + 1))
        birth = np.zeros(n, dtype=np.int64)
    n = birth.shape[0]
    size = rng.integers(config.min_size, config.max_size + 1, size=n)
    slot = np.searchsorted(np.asarray(bank.sizes), size)
    stack = np.array([bank.alpha[s].shape[0] for s in bank.sizes])
    sprite = rng.integers(stack[slot])
    side = np.array([bank.patch_side(s) for s in bank.sizes])[slot]
    palette = np.asarray(config.colours, dtype=np.float32)
    colour = palette[rng.integers(len(palette), size=n)]
    depth = rng.permutation(n)
    limit = (config.env_size - side).astype(np.float64)
    if config.discovery_steps:
        # new objects appear entirely inside the view, at a random place
        low = float(config.view_offset)
        high = low + config.image_size - side
        start = low + rng.uniform(0.0, 1.0, size=(n, 2)) * (high - low)[:, None]
    else:
        start = rng.uniform(0.0, 1.0, size=(n, 2)) * limit[:, None]
    speed = rng.uniform(config.min_speed, config.max_speed, size=n)
    angle = rng.uniform(0.0, 2.0 * np.pi, size=n)
    velocity = speed[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    steps = np.arange(t_len)[:, None] - birth[None, :]
    positions, velocities = bounce(start, velocity, steps, limit)
    return Scene(size, sprite, colour, depth, birth, side, positions, velocities, steps >= 0)


def render_scene(
    config: DataConfig, bank: SpriteBank, scene: Scene, frames: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Composite ``scene`` onto ``frames`` float32 (T, H, W, 3) in place, back to front.

    Returns the per-object boxes float32 (T, n, 4) in view pixels and visibility bool (T, n).
    """
    t_len, n = scene.alive.shape
    h = w = config.image_size
    off = config.view_offset
    xy = (np.rint(scene.positions).astype(np.int64) - off).tolist()  # (T, n, 2) view coords
    alive = scene.alive.tolist()
    alpha = [bank.alpha[s][k] for s, k in zip(scene.size.tolist(), scene.sprite.tolist())]
    alpha3 = [a[..., None] for a in alpha]
    drawn = [a > 0 for a in alpha]
    tight = [bank.boxes[s][k].tolist() for s, k in zip(scene.size.tolist(), scene.sprite.tolist())]
    colour = list(scene.colour)
    order = np.argsort(scene.depth).tolist()
    boxes = np.zeros((t_len, n, 4), dtype=np.float32)
    visible = np.zeros((t_len, n), dtype=bool)
    hits: list[tuple[int, int, int, int, int, int]] = []
    for t in range(t_len):
        frame = frames[t]
        xy_t = xy[t]
        alive_t = alive[t]
        for o in order:
            if not alive_t[o]:
                continue
            x0, y0 = xy_t[o]
            bx0, by0, bx1, by1 = tight[o]
            # extent of the drawn pixels, clipped to the view
            cx0, cy0 = max(x0 + bx0, 0), max(y0 + by0, 0)
            cx1, cy1 = min(x0 + bx1, w), min(y0 + by1, h)
            if cx0 >= cx1 or cy0 >= cy1:
                continue
            if cx0 > x0 + bx0 or cy0 > y0 + by0 or cx1 < x0 + bx1 or cy1 < y0 + by1:
                # partly outside: tighten around the drawn pixels that remain inside the view
                part = drawn[o][cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
                cols = np.flatnonzero(part.any(axis=0))
                if cols.size == 0:
                    continue
                rows = np.flatnonzero(part.any(axis=1))
                cx0, cx1 = cx0 + int(cols[0]), cx0 + int(cols[-1]) + 1
                cy0, cy1 = cy0 + int(rows[0]), cy0 + int(rows[-1]) + 1
            region = frame[cy0:cy1, cx0:cx1]
            region += alpha3[o][cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] * (colour[o] - region)
            hits.append((t, o, cx0, cy0, cx1, cy1))
    if hits:
        table = np.asarray(hits, dtype=np.int64)
        boxes[table[:, 0], table[:, 1]] = table[:, 2:]
        visible[table[:, 0], table[:, 1]] = True
    return boxes, visible


def generate_sequence(
    config: DataConfig, split: str, index: int, bank: SpriteBank | None = None
) -> SequenceData:
    """Sequence ``index`` of ``split``: the same result every time, whatever else is generated.

    ``bank`` (from ``build_bank(config, split)``) may be passed to avoid rebuilding it.
    """
    rng = sequence_rng(config, split, index)
    bank = build_bank(config, split) if bank is None else bank
    scene = sample_scene(config, bank, rng)
    size = config.image_size
    if config.background == "moving":
        frames, _ = moving_background(
            rng, size, config.seq_len, config.background_min_speed, config.background_max_speed
        )
    else:
        frames = np.zeros((config.seq_len, size, size, 3), dtype=np.float32)
    obj_boxes, obj_visible = render_scene(config, bank, scene, frames)
    slots = config.max_slots
    n = scene.num_objects
    boxes = np.zeros((config.seq_len, slots, 4), dtype=np.float32)
    boxes[:, :n] = obj_boxes
    visible = np.zeros((config.seq_len, slots), dtype=bool)
    visible[:, :n] = obj_visible
    ids = np.zeros(slots, dtype=np.int64)
    ids[:n] = np.arange(1, n + 1)
    video = (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return SequenceData(video, boxes, ids, visible, scene)


def empty_split(config: DataConfig, num_sequences: int) -> dict[str, np.ndarray]:
    """Zeroed in-memory arrays for ``num_sequences`` sequences (see ``split_shapes``)."""
    return {
        key: np.zeros(shape, dtype=dtype)
        for key, (shape, dtype) in split_shapes(config, num_sequences).items()
    }


def split_shapes(config: DataConfig, num_sequences: int) -> dict[str, tuple[tuple, np.dtype]]:
    """Shape and dtype of each array of a split: ``video`` uint8 (N, T, H, W, 3), ``boxes``
    float32 (N, T, O, 4), ``ids`` int64 (N, O) and ``visible`` bool (N, T, O)."""
    n, t, s, o = num_sequences, config.seq_len, config.image_size, config.max_slots
    return {
        "video": ((n, t, s, s, 3), np.dtype(np.uint8)),
        "boxes": ((n, t, o, 4), np.dtype(np.float32)),
        "ids": ((n, o), np.dtype(np.int64)),
        "visible": ((n, t, o), np.dtype(bool)),
    }


def generate_split(
    config: DataConfig,
    split: str,
    num_sequences: int | None = None,
    *,
    out: dict[str, np.ndarray] | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Sequences ``0 .. num_sequences - 1`` of ``split`` (default: the config's split size).

    Fills ``out`` (arrays shaped as ``split_shapes`` says, e.g. memory maps) or new arrays and
    returns them. ``progress`` shows a tqdm bar.
    """
    from tqdm.auto import tqdm

    n = config.num_sequences(split) if num_sequences is None else num_sequences
    if n < 0:
        raise ValueError(f"num_sequences must be >= 0, got {n}")
    arrays = empty_split(config, n) if out is None else out
    bank = build_bank(config, split)
    logger.info("generating %d %s sequences of %s", n, split, config.name)
    for i in tqdm(range(n), desc=f"{config.name} {split}", unit="seq", disable=not progress):
        seq = generate_sequence(config, split, i, bank)
        arrays["video"][i] = seq.video
        arrays["boxes"][i] = seq.boxes
        arrays["ids"][i] = seq.ids
        arrays["visible"][i] = seq.visible
    return arrays
