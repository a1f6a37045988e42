"""Schedules of training hyper-parameters (temperature, discovery presence prior) over steps."""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULE_KINDS = ("constant", "linear", "exponential")


@dataclass(frozen=True)
class Schedule:
    """A value that moves from ``start`` to ``end`` over ``steps`` steps, then stays at ``end``.

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
