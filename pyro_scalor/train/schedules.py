"""Schedules of training hyper-parameters (temperature, discovery presence prior, learning-rate
factor) over steps."""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULE_KINDS = ("constant", "linear", "exponential")


@dataclass(frozen=True)
class Schedule:
    """A value that stays at ``start`` for ``delay`` steps, moves to ``end`` over the next
    ``steps`` steps, then stays at ``end``.

    ``kind`` is 'constant' (always start), 'linear', or 'exponential' (geometric interpolation,
    for probabilities that fall by orders of magnitude, e.g. a presence prior 0.1 -> 1e-8).
    ``delay`` (default 0) postpones the ramp, e.g. a learning-rate decay over the last steps.
    """

    start: float
    end: float | None = None
    steps: int = 0
    kind: str = "constant"
    delay: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(
                f"unknown schedule kind {self.kind!r}; valid: {', '.join(SCHEDULE_KINDS)}"
            )
        if self.kind != "constant" and (self.end is None or self.steps <= 0):
            raise ValueError(f"a {self.kind} schedule needs end and steps > 0")
        if self.kind == "exponential" and (self.start <= 0 or (self.end or 0) <= 0):
            raise ValueError("an exponential schedule needs positive start and end")
        if self.delay < 0:
            raise ValueError(f"a schedule's delay must be >= 0, got {self.delay}")

    def __call__(self, step: int) -> float:
        """The value at training step ``step`` (0-based)."""
        if self.kind == "constant" or self.end is None:
            return float(self.start)
        frac = min(max((step - self.delay) / self.steps, 0.0), 1.0)
        if self.kind == "linear":
            return float(self.start + frac * (self.end - self.start))
        return float(
            math.exp(math.log(self.start) + frac * (math.log(self.end) - math.log(self.start)))
        )
