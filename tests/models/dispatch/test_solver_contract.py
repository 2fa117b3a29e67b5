"""The contract every dispatch solver keeps, run on each solver of the table in models/dispatch/solver.py:
every job answered once, every hard constraint held (checked here from the problem alone, not from the
solver's own arrays), a reason for every job left out, the same plan for the same input, and an answer
within the time limit."""

from __future__ import annotations

import dataclasses

import pytest

from models.dispatch.problem import Capacity, GeoPoint, Mode, Options, Problem, Status
from models.dispatch.solver import SOLVERS, solve, structure
from tests.support import check, random_day, with_breaks

OPTIONS = {
    key: Options(
        mode=key[0], capacity=key[1] or Capacity.COUNT, time_limit_s=1.0, speed_kmh=30.0, max_radius_km=12.0
    )
    for key in SOLVERS
}


@pytest.fixture(params=sorted(SOLVERS, key=str), ids=lambda key: "-".join(k.value for k in key if k))
def options(request: pytest.FixtureRequest) -> Options:
    return OPTIONS[request.param]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_hard_constraint_holds_and_every_job_is_answered_once(options: Options, seed: int) -> None:
    jobs, techs = random_day(seed)
    problem = Problem(jobs, techs, options)
    plan = solve(problem)
    assert plan.status in (Status.OPTIMAL, Status.FEASIBLE)
    assert plan.assignments, "a random day has work that fits"
    check(problem, plan)


@pytest.mark.parametrize("seed", [1, 4])
def test_breaks_are_taken_with_no_work_or_travel_inside_them(options: Options, seed: int) -> None:
    jobs, techs = random_day(seed)
    problem = Problem(jobs, with_breaks(techs), options)
    plan = solve(problem)
    assert plan.status in (Status.OPTIMAL, Status.FEASIBLE)
    assert plan.assignments, "a random day has work that fits beside its breaks"
    assert sum(len(r.breaks) for r in plan.routes) == sum(len(t.breaks) for t in problem.technicians)
    check(problem, plan)


def test_days_end_where_each_technician_ends_them(options: Options) -> None:
    # A re-plan's technicians start where they are and end at home: ROUTE's days drive there within
    # the shift (check prices every leg to the end); ASSIGN's end at the last job whatever is sent.
    jobs, techs = random_day(2)
    ending = tuple(
        dataclasses.replace(t, end_location=GeoPoint(t.location.lat - 0.03, t.location.lng + 0.02))
        if k % 2
        else t
        for k, t in enumerate(techs)
    )
    problem = Problem(jobs, ending, options)
    plan = solve(problem)
    assert plan.assignments
    check(problem, plan)
    if options.mode is Mode.ASSIGN:  # the same plan as without end locations
        assert plan.assignments == solve(Problem(jobs, techs, options)).assignments


def test_the_same_input_gives_the_same_plan(options: Options) -> None:
    jobs, techs = random_day(7, n_jobs=12, n_techs=4)
    problem = Problem(jobs, techs, dataclasses.replace(options, time_limit_s=0.5))
    first, second = solve(problem), solve(problem)
    assert first.assignments == second.assignments and first.unassigned == second.unassigned


def test_the_answer_comes_within_the_time_limit(options: Options) -> None:
    jobs, techs = random_day(11, n_jobs=120, n_techs=20)
    limit_s = 1.0
    plan = solve(Problem(jobs, techs, dataclasses.replace(options, time_limit_s=limit_s)))
    assert plan.status in (Status.OPTIMAL, Status.FEASIBLE)
    assert plan.solve_ms <= 1000 * limit_s * 1.05 + 250


def test_nothing_to_do_is_answered_without_a_search(options: Options) -> None:
    jobs, techs = random_day(5, n_jobs=3, n_techs=2)
    assert solve(Problem((), techs, options)).assignments == []
    nobody = solve(Problem(jobs, (), options))
    assert not nobody.assignments and len(nobody.unassigned) == len(jobs)


def test_the_table_covers_every_structure() -> None:
    for mode in Mode:
        for capacity in Capacity:
            assert structure(Options(mode=mode, capacity=capacity)) in SOLVERS
