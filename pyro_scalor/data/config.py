"""The typed configuration of a procedural moving-object dataset, with its checks.

A ``DataConfig`` fixes everything that decides the pixels: the environment, the objects, their
motion, the background, the sequence length and the seed. It is frozen and hashable, and
``config_json`` turns it into the canonical JSON that keys the disk cache.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pyro_scalor.validation import check_choice

#: Dataset splits and the id mixed into each sequence's seed (so splits never share a seed).
SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
OBJECT_KINDS: tuple[str, ...] = ("dsprites", "mnist")
SHAPES: tuple[str, ...] = ("square", "ellipse", "heart")
BACKGROUNDS: tuple[str, ...] = ("black", "moving")
#: Largest and smallest object box side the generator may produce (before clipping to the view).
MIN_BOX_SIDE = 3
MAX_BOX_SIDE = 24

#: Saturated colours that read well on black and on the moving background (RGB in [0, 1]).
DEFAULT_COLOURS: tuple[tuple[float, float, float], ...] = (
    (1.0, 0.15, 0.15),  # red
    (0.2, 1.0, 0.2),  # green
    (0.25, 0.45, 1.0),  # blue
    (1.0, 0.95, 0.2),  # yellow
    (1.0, 0.25, 1.0),  # magenta
    (0.2, 1.0, 1.0),  # cyan
    (1.0, 0.6, 0.1),  # orange
    (1.0, 1.0, 1.0),  # white
)


@dataclass(frozen=True)
class DataConfig:
    """Everything that determines a procedural moving-object dataset.

    Objects live in a square environment of side ``env_size`` pixels whose centre holds the
    observed ``image_size`` view; they move at constant speed and bounce off its walls. With
    ``discovery_steps`` empty, ``min_objects``..``max_objects`` objects exist from the first frame;
    otherwise that many NEW objects appear inside the view at each listed step.
    """

    name: str = "custom"
    objects: str = "dsprites"
    image_size: int = 64
    env_size: int = 90
    seq_len: int = 8
    min_objects: int = 10
    max_objects: int = 12
    #: object side in pixels (dSprites: the shape's square patch; MNIST: the digit's height)
    min_size: int = 7
    max_size: int = 13
    #: speed in pixels per frame, in a uniformly random direction
    min_speed: float = 1.0
    max_speed: float = 3.0
    shapes: tuple[str, ...] = SHAPES
    digits: tuple[int, ...] = tuple(range(10))
    colours: tuple[tuple[float, float, float], ...] = DEFAULT_COLOURS
    background: str = "black"
    #: speed of the moving background texture in pixels per frame (background="moving")
    background_min_speed: float = 0.5
    background_max_speed: float = 1.5
    #: frames at which a batch of new objects appears (frequent dense discovery); empty: none
    discovery_steps: tuple[int, ...] = ()
    seed: int = 0
    num_train: int = 10_000
    num_val: int = 500
    num_test: int = 1_000

    def __post_init__(self) -> None:
        # Normalise sequences to tuples so that configs built from lists (JSON) compare equal.
        object.__setattr__(self, "shapes", tuple(self.shapes))
        object.__setattr__(self, "digits", tuple(int(d) for d in self.digits))
        object.__setattr__(self, "colours", tuple(tuple(float(v) for v in c) for c in self.colours))
        object.__setattr__(self, "discovery_steps", tuple(int(s) for s in self.discovery_steps))
        self._check()

    def _check(self) -> None:
        """Raise ValueError naming the first bad field and what it should be."""
        check_choice(self.objects, OBJECT_KINDS, "object kind")
        check_choice(self.background, BACKGROUNDS, "background")
        for field in (
            "image_size",
            "env_size",
            "seq_len",
            "min_objects",
            "max_objects",
            "min_size",
            "max_size",
            "seed",
            "num_train",
            "num_val",
            "num_test",
        ):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{field} must be an integer, got {value!r}")
        _at_least("image_size", self.image_size, 16)
        _at_least("seq_len", self.seq_len, 1)
        _at_least("min_objects", self.min_objects, 0)
        _at_least("max_objects", self.max_objects, 1)
        _ordered("min_objects", self.min_objects, "max_objects", self.max_objects)
        _at_least("min_size", self.min_size, MIN_BOX_SIDE)
        _ordered("min_size", self.min_size, "max_size", self.max_size)
        if self.max_size > MAX_BOX_SIDE:
            raise ValueError(f"max_size must be <= {MAX_BOX_SIDE} pixels, got {self.max_size}")
        if self.env_size < self.image_size:
            raise ValueError(
                f"env_size ({self.env_size}) must be >= image_size ({self.image_size}): the "
                "view is the centre of the environment"
            )
        # MNIST patches are 1.4x the digit height (the 28x28 frame around a 20 px digit).
        if 2 * self.max_size >= self.env_size:
            raise ValueError(
                f"max_size ({self.max_size}) is too large for env_size ({self.env_size}); "
                "objects must be less than half the environment's side"
            )
        for field in ("min_speed", "max_speed", "background_min_speed", "background_max_speed"):
            value = getattr(self, field)
            if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
                raise ValueError(f"{field} must be a number, got {value!r}")
            _at_least(field, value, 0)
        _ordered("min_speed", self.min_speed, "max_speed", self.max_speed)
        _ordered(
            "background_min_speed",
            self.background_min_speed,
            "background_max_speed",
            self.background_max_speed,
        )
        if not self.shapes:
            raise ValueError(f"shapes must not be empty; choose from {', '.join(SHAPES)}")
        for shape in self.shapes:
            check_choice(shape, SHAPES, "shape")
        if not self.digits or any(d < 0 or d > 9 for d in self.digits):
            raise ValueError(f"digits must be a non-empty subset of 0..9, got {self.digits}")
        if not self.colours:
            raise ValueError("colours must hold at least one (r, g, b) triple")
        for colour in self.colours:
            if len(colour) != 3 or any(not 0.0 <= v <= 1.0 for v in colour):
                raise ValueError(f"each colour must be (r, g, b) in [0, 1], got {colour}")
        steps = self.discovery_steps
        if steps:
            if list(steps) != sorted(set(steps)) or steps[0] < 0 or steps[-1] >= self.seq_len:
                raise ValueError(
                    f"discovery_steps must be increasing frame indices in [0, {self.seq_len}), "
                    f"got {steps}"
                )
            if 2 * self.max_size >= self.image_size:
                raise ValueError("with discovery_steps, objects must fit inside the view")
        for split in SPLITS:
            _at_least(f"num_{split}", self.num_sequences(split), 0)
        _at_least("seed", self.seed, 0)

    @property
    def max_slots(self) -> int:
        """Number O of object slots per sequence (ground-truth arrays are padded to it)."""
        return self.max_objects * max(1, len(self.discovery_steps))

    @property
    def view_offset(self) -> int:
        """Environment coordinate of the view's top-left pixel (the view is centred)."""
        return (self.env_size - self.image_size) // 2

    def num_sequences(self, split: str) -> int:
        """Default number of sequences of ``split`` ('train', 'val' or 'test')."""
        check_choice(split, SPLITS, "split")
        return getattr(self, f"num_{split}")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-able types (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataConfig:
        """Inverse of ``to_dict``; raises ValueError on unknown fields."""
        check_field_names(values)
        return cls(**values)


def check_field_names(names: Iterable[str]) -> None:
    """Raise ValueError listing the valid fields if any of ``names`` is not a DataConfig field."""
    known = {f.name for f in dataclasses.fields(DataConfig)}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(
            f"unknown data config field(s) {', '.join(unknown)}; valid fields: "
            f"{', '.join(sorted(known))}"
        )


def config_json(config: DataConfig) -> str:
    """Canonical JSON text of ``config`` (sorted keys, no spaces): equal configs give equal text."""
    return json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))


def _at_least(name: str, value: float, low: float) -> None:
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")


def _ordered(lo_name: str, lo: float, hi_name: str, hi: float) -> None:
    if lo > hi:
        raise ValueError(f"{lo_name} ({lo}) must be <= {hi_name} ({hi})")
