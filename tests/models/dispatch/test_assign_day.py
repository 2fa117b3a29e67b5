"""ASSIGN mode answers days a technician can work: one job at a time, each reached from the previous one,
and a status that says whether the solver's optimum was kept."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.dispatch import eligibility
from models.dispatch.assign_flow import objective_of
from models.dispatch.problem import (
    Capacity,
    Job,
    Mode,
    Options,
    Problem,
    Reason,
    Status,
    Technician,
    Weights,
    Window,
)
from models.dispatch.solver import solve
from tests.support import HOUR, job, tech
from tests.support.days import assert_no_double_booking, travel_s

DAY = 1_800_000_000.0
SHIFT = Window(DAY + 8 * HOUR, DAY + 17 * HOUR)
MORNING = Window(DAY + 8 * HOUR, DAY + 10 * HOUR)
# Travel between places centimetres apart: haversine here, a chord in the solvers, apart by milliseconds.
SLACK_S = 0.1
MODES = [Options(), Options(capacity=Capacity.SHIFT_MINUTES)]


@pytest.mark.parametrize("options", MODES, ids=["count", "shift-minutes"])
def test_two_long_jobs_in_the_same_hours_are_not_given_to_one_technician_at_once(options: Options) -> None:
    """Measured before: on the demo day t0010 got j0265 and j0246 both at 08:05 for 120 minutes, each
    arrival computed from home alone, and the plan said optimal."""
    jobs = (
        job("j0265", km=2.0, duration_minutes=120, window=MORNING, priority=1),
        job("j0246", km=2.5, duration_minutes=120, window=MORNING),
    )
    near, far = tech("near", shift=SHIFT), tech("far", km=9.0, shift=SHIFT)
    plan = solve(Problem(jobs, (near,), options))
    assert [a.job_id for a in plan.assignments] == ["j0265"]  # the more valuable one keeps the slot
    [left] = plan.unassigned
    assert left.reason is Reason.CAPACITY_EXHAUSTED and "collides with j0265" in left.detail
    assert plan.status is Status.FEASIBLE and plan.bound is not None and plan.bound < plan.objective

    # With a second technician the job moves there instead, at the cost of its longer drive.
    plan = solve(Problem(jobs, (near, far), options))
    assert {a.job_id: a.technician_id for a in plan.assignments} == {"j0265": "near", "j0246": "far"}
    assert plan.status is Status.FEASIBLE and not plan.unassigned
    assert plan.objective > plan.bound  # the bound is the assignment that ignored the clash


def test_arrival_and_travel_run_from_the_previous_stop() -> None:
    # Jobs 4 and 6 km north of home, at 30 km/h: 8 minutes out, 60 minutes of work, 4 minutes on.
    jobs = (
        job("later", km=6.0, duration_minutes=60, window=Window(DAY + 8 * HOUR, DAY + 12 * HOUR)),
        job("first", km=4.0, duration_minutes=60, window=Window(DAY + 8 * HOUR, DAY + 8.5 * HOUR)),
    )
    plan = solve(Problem(jobs, (tech("a", shift=SHIFT),)))
    assert plan.status is Status.OPTIMAL  # the day holds the optimum as it is
    first, later = sorted(plan.assignments, key=lambda a: a.sequence)
    assert (first.job_id, first.sequence, later.job_id, later.sequence) == ("first", 0, "later", 1)
    assert first.arrival == pytest.approx(DAY + 8 * HOUR + 8 * 60, abs=1)
    assert later.arrival == pytest.approx(first.arrival + 3600 + 4 * 60, abs=1)
    assert (first.travel_km, later.travel_km) == (pytest.approx(4.0, abs=0.01), pytest.approx(2.0, abs=0.01))
    assert plan.travel_km == pytest.approx(6.0, abs=0.01)  # the day ends at its last job
    assert plan.objective == pytest.approx(plan.bound)
    assert_no_double_booking(Problem(jobs, (tech("a", shift=SHIFT),)), plan.assignments, 1.0)


# Random small days: places within 10 km of the centre, windows between 8:00 and 19:00.
@st.composite
def small_day(draw: st.DrawFn) -> tuple[list[Job], list[Technician]]:
    def window(first: int, last: int, hours: int) -> Window | None:
        if draw(st.booleans()):
            return None
        start = draw(st.integers(first, last))
        return Window(DAY + start * HOUR, DAY + (start + draw(st.integers(1, hours))) * HOUR)

    jobs = [
        job(
            f"j{i}",
            km=draw(st.floats(-10.0, 10.0)),
            required_skills=frozenset(draw(st.sampled_from([(), ("install",), ("repair",)]))),
            duration_minutes=draw(st.sampled_from([30, 60, 90, 120])),
            window=window(8, 15, 4),
            priority=draw(st.integers(0, 2)),
            must_finish_in_window=draw(st.booleans()),
        )
        for i in range(draw(st.integers(1, 5)))
    ]
    techs = [
        tech(
            f"t{i}",
            km=draw(st.floats(-10.0, 10.0)),
            skills=frozenset(draw(st.sampled_from([("install",), ("install", "repair")]))),
            max_jobs=draw(st.integers(0, 4)),
            shift=window(7, 10, 9),
        )
        for i in range(draw(st.integers(1, 2)))
    ]
    return jobs, techs


def can_work(problem: Problem, t: int, mine: tuple[int, ...]) -> bool:
    """Whether some order of these jobs is a day technician t can work (earliest arrivals)."""
    tech, n_tech = problem.technicians[t], len(problem.technicians)
    for order in itertools.permutations(mine):
        clock, here, ok = tech.shift.start if tech.shift else -math.inf, t, True
        for j in order:
            work = problem.jobs[j]
            clock = max(
                clock + travel_s(problem, here, n_tech + j), work.window.start if work.window else -math.inf
            )
            done = clock + 60 * work.duration_minutes
            if clock > work.latest_start() + SLACK_S or (tech.shift and done > tech.shift.end + SLACK_S):
                ok = False
                break
            clock, here = done, n_tech + j
        if ok:
            return True
    return not mine


def best_workable(problem: Problem) -> float:
    """The ASSIGN objective's optimum over the assignments whose days can be worked, by enumeration."""
    elig = eligibility.compute(problem)
    n_tech = len(problem.technicians)
    best = float("inf")
    for choice in itertools.product(range(-1, n_tech), repeat=len(problem.jobs)):
        if any(t >= 0 and not elig.feasible[j, t] for j, t in enumerate(choice)):
            continue
        mine = [tuple(j for j, c in enumerate(choice) if c == t) for t in range(n_tech)]
        if any(len(m) > elig.capacity[t] for t, m in enumerate(mine)):
            continue
        if problem.options.capacity is Capacity.SHIFT_MINUTES and any(
            problem.technicians[t].shift
            and sum(elig.minutes[j, t] + problem.jobs[j].duration_minutes for j in m)
            > (problem.technicians[t].shift.end - problem.technicians[t].shift.start) / 60 + 1e-6
            for t, m in enumerate(mine)
        ):
            continue
        if all(can_work(problem, t, m) for t, m in enumerate(mine)):
            best = min(best, objective_of(problem, elig, np.array(choice)))
    return best


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(day=small_day(), capacity=st.sampled_from(list(Capacity)), balance=st.sampled_from([0.0, 2.0]))
def test_no_answer_double_books_and_the_status_is_honest(
    day: tuple[list[Job], list[Technician]], capacity: Capacity, balance: float
) -> None:
    """Every answer is a day that can be worked, priced as the plan it is; its bound holds for every
    such day, and it says optimal only when no such day is cheaper (enumerated)."""
    options = Options(mode=Mode.ASSIGN, capacity=capacity, time_limit_s=2.0, weights=Weights(balance=balance))
    problem = Problem(tuple(day[0]), tuple(day[1]), options)
    plan = solve(problem)
    assert sorted([a.job_id for a in plan.assignments] + [u.job_id for u in plan.unassigned]) == sorted(
        j.job_id for j in problem.jobs
    )
    assert_no_double_booking(problem, plan.assignments, SLACK_S)
    index = {j.job_id: k for k, j in enumerate(problem.jobs)}
    tech_of_job = np.full(len(problem.jobs), -1)
    for a in plan.assignments:
        tech_of_job[index[a.job_id]] = int(a.technician_id[1:])
    elig = eligibility.compute(problem)
    assert plan.objective == pytest.approx(objective_of(problem, elig, tech_of_job))  # the plan's own
    best = best_workable(problem)
    # The solvers count costs in thousandths: optimal to that, so to a cent over five jobs.
    assert plan.objective >= best - 0.01
    if plan.bound is not None:
        assert plan.bound <= best + 0.01
    if plan.status is Status.OPTIMAL:
        assert plan.objective == pytest.approx(best, abs=0.01)
