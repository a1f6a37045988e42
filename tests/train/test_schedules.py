"""Schedules of training hyper-parameters."""

from __future__ import annotations

import math

import pytest

from pyro_scalor.train.schedules import Schedule


def test_constant_schedule():
    s = Schedule(0.3)
    assert [s(k) for k in (0, 1, 50, 10**6)] == [0.3] * 4
    # 'constant' ignores an end value: always the start
    assert Schedule(1.0, 0.5, 10, "constant")(5) == 1.0


def test_linear_schedule_at_start_mid_end_and_beyond():
    s = Schedule(1.0, 0.5, 100, "linear")
    assert s(0) == 1.0
    assert s(25) == pytest.approx(0.875, abs=1e-12)
    assert s(50) == pytest.approx(0.75, abs=1e-12)
    assert s(100) == pytest.approx(0.5, abs=1e-12)
    assert s(101) == s(10**6) == pytest.approx(0.5, abs=1e-12)
    assert s(-10) == 1.0  # before the start: the start value
    up = Schedule(0.0, 2.0, 4, "linear")
    assert [up(k) for k in range(6)] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.0])


def test_exponential_schedule_is_geometric():
    s = Schedule(0.1, 1e-8, 2000, "exponential")
    assert s(0) == pytest.approx(0.1, rel=1e-12)
    # half way: the geometric mean sqrt(0.1 * 1e-8) = 10 ** -4.5
    assert s(1000) == pytest.approx(10**-4.5, rel=1e-9)
    assert s(500) == pytest.approx(10**-2.75, rel=1e-9)
    assert s(2000) == pytest.approx(1e-8, rel=1e-9)
    assert s(5000) == pytest.approx(1e-8, rel=1e-9)
    values = [s(k) for k in range(0, 2001, 100)]
    ratios = [b / a for a, b in zip(values, values[1:])]
    assert all(math.isclose(r, ratios[0], rel_tol=1e-9) for r in ratios)


def test_saved_schedules_load_and_delayed_ramps_are_refused():
    saved = {"start": 1.0, "end": 0.5, "steps": 10, "kind": "linear", "delay": 0}
    assert Schedule.from_dict(saved) == Schedule(1.0, 0.5, 10, "linear")
    with pytest.raises(ValueError, match="delayed ramp"):
        Schedule.from_dict(dict(saved, delay=6))
    with pytest.raises(ValueError, match="unknown field"):
        Schedule.from_dict(dict(saved, warmup=3))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(start=1.0, kind="cosine"), "unknown schedule kind"),
        (dict(start=1.0, steps=10, kind="linear"), "needs end and steps"),
        (dict(start=1.0, end=0.5, steps=0, kind="linear"), "needs end and steps"),
        (dict(start=1.0, end=0.5, steps=-3, kind="exponential"), "needs end and steps"),
        (dict(start=0.0, end=0.5, steps=10, kind="exponential"), "positive start and end"),
        (dict(start=0.1, end=-1e-3, steps=10, kind="exponential"), "positive start and end"),
        (dict(start=0.1, end=0.0, steps=10, kind="exponential"), "positive start and end"),
    ],
)
def test_bad_schedules_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Schedule(**kwargs)
