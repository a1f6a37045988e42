"""Schedules of training hyper-parameters (temperature, discovery presence prior) over steps."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

SCHEDULE_KINDS = ("constant", "linear", "exponential")

#: Fields that schedules saved by earlier versions hold and :meth:`Schedule.from_dict` drops
#: when they have their neutral value (``delay`` 0: the ramp starts at step 0).
REMOVED_SCHEDULE_FIELDS = ("delay",)


@dataclass(frozen=True)
class Schedule:
    """A value that moves from ``start`` to ``end`` over the first ``steps`` steps, then stays
    at ``end``.

    ``kind`` is 'constant' (always start), 'linear', or 'exponential' (geometric interpolation,
    for probabilities that fall by orders of magnitude, e.g. a presence prior 0.1 -> 1e-8).
    """

    start: float
    end: float | None = None
    steps: int = 0
    kind: str = "constant"

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(
                f"unknown schedule kind {self.kind!r}; valid: {', '.join(SCHEDULE_KINDS)}"
            )
        if self.kind != "constant" and (self.end is None or self.steps <= 0):
            raise ValueError(f"a {self.kind} schedule needs end and steps > 0")
        if self.kind == "exponential" and (self.start <= 0 or (self.end or 0) <= 0):
            raise ValueError("an exponential schedule needs positive start and end")

    def __call__(self, step: int) -> float:
        """The value at training step ``step`` (0-based)."""
        if self.kind == "constant" or self.end is None:
            return float(self.start)
        frac = min(max(step / self.steps, 0.0), 1.0)
        if self.kind == "linear":
            return float(self.start + frac * (self.end - self.start))
        return float(
            math.exp(math.log(self.start) + frac * (math.log(self.end) - math.log(self.start)))
        )

    @classmethod
    def from_dict(cls, d: dict) -> Schedule:
        """A schedule saved as ``dataclasses.asdict(schedule)``, by this or an earlier version.

        A saved ``delay`` of 0 is dropped; a delayed ramp, or an unknown field, raises ValueError.
        """
        d = dict(d)
        delay = d.pop("delay", 0)
        if delay:
            raise ValueError(
                f"a schedule with a delayed ramp (delay={delay}) cannot be loaded: {d}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"Schedule: unknown field(s) {', '.join(unknown)} in {d}")
        return cls(**d)
