"""The day schedule: breaks taken where the rules allow, the earliest times, and the vectorized check
of one job alone agreeing with it."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models.dispatch.day_schedule import Pause, Stop, earliest, fits_alone

H = 3600.0
LUNCH = Pause(12 * H, 13.5 * H, 1800.0)


def test_lunch_is_taken_at_the_next_job_while_waiting_for_its_window() -> None:
    # Free at 11:40 after a job; the next is 10 minutes away and opens at 13:00: lunch fills the wait.
    stops = [Stop(600.0, 10 * H, 11 * H, 100 * 60.0), Stop(600.0, 13 * H, 14 * H, 3600.0)]
    day = earliest((8 * H, 17 * H), [LUNCH], stops, None)
    assert day is not None
    assert day.arrivals == [10 * H, 13 * H]
    assert day.breaks == [12 * H]
    assert day.end == 14 * H


def test_a_break_pushes_the_work_it_cannot_fit_around() -> None:
    # Back-to-back jobs 11:30-12:30 and 12:40-...: lunch must start by 13:30, so after the second job
    # (a 40-minute job ends 13:20) or between them, which delays the second to 13:10.
    stops = [Stop(0.0, 11.5 * H, 11.5 * H, 3600.0), Stop(600.0, 12 * H, 14 * H, 2400.0)]
    day = earliest((8 * H, 17 * H), [LUNCH], stops, None)
    assert day is not None and day.arrivals == [11.5 * H, 12.5 * H + 600.0]
    assert day.breaks == [12.5 * H + 600.0 + 2400.0]  # after the second job, before 13:30


def test_no_time_for_the_break_means_no_day() -> None:
    # Work from 11:00 to 14:00 without a gap leaves no place for a lunch that must start by 13:30.
    stops = [Stop(0.0, 11 * H, 11 * H, 3 * 3600.0)]
    assert earliest((8 * H, 17 * H), [LUNCH], stops, None) is None
    assert earliest((8 * H, 17 * H), [], stops, None) is not None


def test_route_days_take_a_late_break_before_or_after_driving_home() -> None:
    stops = [Stop(600.0, 9 * H, 9 * H, 3600.0)]
    late = Pause(16 * H, 16.5 * H, 900.0)
    day = earliest((8 * H, 17 * H), [late], stops, 1200.0)
    assert day is not None and day.breaks == [16 * H] and day.end == 16 * H + 900.0
    assert earliest((8 * H, 16.2 * H), [late], stops, 1200.0) is None  # the break would end after the shift


def _brute_force(shift: tuple[float, float], pauses: list[Pause], stops: list[Stop]) -> float | None:
    """Earliest end of an ASSIGN day by trying every place for every break: (gap, before or after the
    drive), in order."""
    places = [(g, side) for g in range(len(stops) + 1) for side in (0, 1)]
    best = None
    for choice in itertools.product(places, repeat=len(pauses)):
        if list(choice) != sorted(choice):
            continue
        clock, ok = shift[0], True
        for g in range(len(stops) + 1):
            for side in (0, 1):
                for b, where in zip(pauses, choice, strict=True):
                    if where == (g, side):
                        clock = max(clock, b.early)
                        ok &= clock <= b.late + 1e-6
                        clock += b.seconds
                if side == 0 and g < len(stops):
                    clock += stops[g].travel_s
            if g < len(stops):
                clock = max(clock, stops[g].early)
                ok &= clock <= stops[g].late + 1e-6
                clock += stops[g].duration_s
                ok &= clock <= shift[1] + 1e-6
        ok &= clock <= shift[1] + 1e-6
        if ok and (best is None or clock < best):
            best = clock
    return best


minutes = st.integers(0, 12).map(lambda k: 900.0 * k)
stops_strategy = st.lists(
    st.tuples(minutes, st.integers(8, 16), st.integers(0, 3), st.integers(1, 6)).map(
        lambda s: Stop(s[0], s[1] * H, (s[1] + s[2]) * H, 900.0 * s[3])
    ),
    max_size=3,
)
pauses_strategy = st.lists(
    st.tuples(st.integers(9, 15), st.integers(0, 2), st.integers(1, 4)).map(
        lambda p: Pause(p[0] * H, (p[0] + p[1]) * H, 900.0 * p[2])
    ),
    max_size=2,
).map(lambda ps: sorted(ps, key=lambda p: (p.early, p.late)))


@settings(max_examples=300, deadline=None)
@given(stops_strategy, pauses_strategy, st.integers(14, 20))
def test_the_schedule_is_the_earliest_of_every_placement_of_the_breaks(
    stops: list[Stop], pauses: list[Pause], shift_end: int
) -> None:
    shift = (8 * H, shift_end * H)
    day = earliest(shift, pauses, stops, None)
    expected = _brute_force(shift, pauses, stops)
    assert (day is None) == (expected is None)
    if day is not None and expected is not None:
        assert math.isclose(day.end, expected, abs_tol=1e-6)


@settings(max_examples=300, deadline=None)
@given(stops_strategy.filter(lambda s: len(s) == 1), pauses_strategy, st.integers(14, 20))
def test_one_job_alone_is_judged_alike_by_the_vectorized_check(
    stops: list[Stop], pauses: list[Pause], shift_end: int
) -> None:
    (stop,) = stops
    shift = (8 * H, shift_end * H)
    one = earliest(shift, pauses, stops, None) is not None
    many = fits_alone(
        np.array(shift[0]), np.array(shift[1]), pauses, np.array([[stop.travel_s]]),
        np.array([[stop.early]]), np.array([[stop.late]]), np.array([[stop.duration_s]]),
    )  # fmt: skip
    assert bool(many[0, 0]) == one
