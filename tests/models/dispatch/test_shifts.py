"""Several shifts per technician: each a day of its own, in every solver; answered under the request's
ids, a route per shift; OfferSlots over the next three days."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models.dispatch import offer_slots
from models.dispatch.problem import Break, Mode, Options, Problem, Window
from models.dispatch.solver import SOLVERS, solve
from models.errors import FieldError
from tests.support import DAY, HOUR, SLACK_S, job, km_between, near, tech
from tests.support.days import assert_ends_reached

D = 24 * HOUR
THREE_DAYS = tuple(Window(DAY + d * D + 8 * HOUR, DAY + d * D + 12 * HOUR) for d in range(3))


def three_day_technician() -> Problem:
    pauses = tuple(Break(Window(w.start + 2 * HOUR, w.start + 2.5 * HOUR), 15.0) for w in THREE_DAYS)
    worker = tech("t1", shifts=THREE_DAYS, max_jobs=2, breaks=pauses)
    jobs = tuple(
        job(
            f"d{d}j{k}",
            km=1.0 + k,
            duration_minutes=60.0,
            window=Window(DAY + d * D + 8 * HOUR, DAY + d * D + 11 * HOUR),
        )
        for d in range(3)
        for k in range(2)
    )
    return Problem(jobs, (worker,), Options(time_limit_s=1.0))


@pytest.mark.parametrize("key", sorted(SOLVERS, key=str), ids=lambda k: "-".join(x.value for x in k if x))
def test_each_shift_is_a_day_of_its_own_answered_under_the_technicians_id(key: tuple) -> None:
    problem = three_day_technician()
    mode, capacity = key
    options = dataclasses.replace(problem.options, mode=mode, capacity=capacity or problem.options.capacity)
    plan = solve(dataclasses.replace(problem, options=options))
    assert {a.technician_id for a in plan.assignments} == {"t1"}
    assert len(plan.assignments) == 6, plan.unassigned  # two a day: max_jobs counts per shift
    assert [r.shift for r in plan.routes] == list(THREE_DAYS)
    for route, shift in zip(plan.routes, THREE_DAYS, strict=True):
        assert route.technician_id == "t1" and len(route.breaks) == 1
        assert all(j.startswith(f"d{THREE_DAYS.index(shift)}") for j in route.job_ids)
        assert shift.start <= route.breaks[0].start <= shift.start + 2.5 * HOUR


@pytest.mark.parametrize("doubled", [False, True], ids=["haversine", "matrices"])
def test_later_shifts_start_where_the_first_ended_at_the_end_location(doubled: bool) -> None:
    # A re-plan's technician now at 0 km, home at 5 km: today 0 -> 1 -> 2 -> 5 (5 km), and the next two
    # days from home, 5 -> 2 -> 1 -> 5 (8 km). The request's matrices (end location last) say twice that.
    problem = three_day_technician()
    worker = dataclasses.replace(problem.technicians[0], end_location=near(5.0))
    options = dataclasses.replace(problem.options, mode=Mode.ROUTE)
    problem = dataclasses.replace(problem, technicians=(worker,), options=options)
    if doubled:
        points = [worker.location, *(j.location for j in problem.jobs), near(5.0)]
        km = np.array([[2 * km_between(a, b) for b in points] for a in points]).ravel()
        problem = dataclasses.replace(problem, options=dataclasses.replace(options, distance_km=km))
    plan = solve(problem)
    assert len(plan.assignments) == 6
    assert_ends_reached(problem, plan.routes, SLACK_S)  # every leg priced from where each day starts
    scale = 2.0 if doubled else 1.0
    assert [r.travel_km for r in plan.routes] == pytest.approx([5 * scale, 8 * scale, 8 * scale], rel=1e-3)


def test_offer_slots_answers_the_next_three_days() -> None:
    problem = three_day_technician()
    busy = dataclasses.replace(
        problem,
        jobs=tuple(
            dataclasses.replace(j, pinned_technician_id="t1") for j in problem.jobs if j.job_id != "d2j1"
        ),
    )
    windows = [Window(w.start, w.start + 3 * HOUR) for w in THREE_DAYS]
    offers = offer_slots.offer(job("new", km=2.0, duration_minutes=60.0), windows, busy)
    assert [o.available for o in offers] == [False, False, True]  # two jobs a day; day 3 has room
    assert offers[2].technician_id == "t1" and "full" in offers[0].detail


def test_shifts_that_overlap_or_come_with_a_shift_are_refused() -> None:
    from models.dispatch.problem import validate

    overlapping = (THREE_DAYS[0], Window(THREE_DAYS[0].start + HOUR, THREE_DAYS[0].end + HOUR))
    with pytest.raises(FieldError) as error:
        validate(Problem((), (tech("t", shifts=overlapping),), Options()))
    assert error.value.field == "technicians[0].shifts[1]"
    with pytest.raises(FieldError) as error:
        validate(Problem((), (tech("t", shifts=THREE_DAYS, shift=THREE_DAYS[0]),), Options()))
    assert error.value.field == "technicians[0].shifts"
    outside = Break(Window(DAY + 20 * HOUR, DAY + 21 * HOUR), 30.0)
    with pytest.raises(FieldError) as error:
        validate(Problem((), (tech("t", shifts=THREE_DAYS, breaks=(outside,)),), Options(mode=Mode.ROUTE)))
    assert error.value.field == "technicians[0].breaks[0].window"


def test_breaks_that_cannot_all_be_taken_are_refused_naming_the_break() -> None:
    from models.dispatch.problem import validate

    at = THREE_DAYS[0].start + 2 * HOUR
    twice = (Break(Window(at, at), 1.0), Break(Window(at, at), 1.0))  # both must start at one instant
    with pytest.raises(FieldError) as error:
        validate(Problem((), (tech("t", breaks=twice),), Options()))
    assert error.value.field == "technicians[0].breaks[1].window"
