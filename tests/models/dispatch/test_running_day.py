"""The running day the re-plan benchmark plays (tests/support/replan.py): a re-plan before anything
started keeps the first plan's world, and keeping that plan drives exactly its kilometres."""

from __future__ import annotations

import dataclasses

import pytest

from models.dispatch import problem as dp
from models.dispatch.solver import solve
from tests.support import random_day
from tests.support.replan import kept_km, moves, running_day


def _planned(seed: int) -> tuple[dp.Problem, dp.Plan]:
    jobs, techs = random_day(seed, n_jobs=24, n_techs=5)
    jobs = tuple(dataclasses.replace(j, pinned_technician_id=None) for j in jobs)
    problem = dp.Problem(jobs, techs, dp.Options(mode=dp.Mode.ROUTE, time_limit_s=1.0))
    return problem, solve(problem)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_re_plan_before_the_first_arrival_keeps_the_plan_and_its_kilometres(seed: int) -> None:
    problem, plan = _planned(seed)
    first = min(a.arrival for a in plan.assignments if a.arrival is not None)
    replan = running_day(problem, plan, first - 1.0, urgent=0, seed=seed)
    held = {a.job_id: a.technician_id for a in plan.assignments}
    assert {j.job_id: j.current_technician_id for j in replan.jobs if j.job_id in held} == held
    assert [t.location for t in replan.technicians] == [t.location for t in problem.technicians]
    assert kept_km(replan, plan) == pytest.approx(plan.travel_km, rel=1e-9)
    unchanged = moves(replan, plan, plan)
    assert (unchanged.moved, unchanged.dropped, unchanged.remaining) == (0, 0, len(held))


def test_started_jobs_leave_the_re_plan_and_their_technician_waits_where_the_last_one_was() -> None:
    problem, plan = _planned(3)
    arrivals = sorted(a.arrival for a in plan.assignments if a.arrival is not None)
    at = arrivals[len(arrivals) // 2]
    replan = running_day(problem, plan, at, urgent=2, seed=3)
    started = {a.job_id for a in plan.assignments if a.arrival is not None and a.arrival < at}
    assert started and not started & {j.job_id for j in replan.jobs}
    assert sum(j.job_id.startswith("urgent") for j in replan.jobs) == 2
    # Keeping the plan drives less than the whole morning: the started part is behind.
    assert kept_km(replan, plan) < plan.travel_km
