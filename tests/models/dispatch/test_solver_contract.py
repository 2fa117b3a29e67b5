"""The contract every dispatch solver keeps, run on each solver of the table in models/dispatch/solver.py:
every job answered once, every hard constraint held (checked here from the problem alone, not from the
solver's own arrays), a reason for every job left out, the same plan for the same input, and an answer
within the time limit."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from models.dispatch.problem import (
    Capacity,
    GeoPoint,
    Job,
    Mode,
    Options,
    Plan,
    Problem,
    Status,
    Technician,
    Window,
)
from models.dispatch.solver import SOLVERS, solve, structure

DAY = 1_800_000_000.0
HOUR = 3600.0
SKILLS = ("install", "repair", "clean")
OPTIONS = {
    key: Options(
        mode=key[0], capacity=key[1] or Capacity.COUNT, time_limit_s=1.0, speed_kmh=30.0, max_radius_km=12.0
    )
    for key in SOLVERS
}
# Arrival times are whole seconds in ROUTE mode, and route travel times are rounded up to them.
SLACK_S = 61.0


def km_between(a: GeoPoint, b: GeoPoint) -> float:
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lng - a.lng)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def random_day(
    seed: int, n_jobs: int = 40, n_techs: int = 8
) -> tuple[tuple[Job, ...], tuple[Technician, ...]]:
    rng = np.random.default_rng(seed)

    def point() -> GeoPoint:
        return GeoPoint(31.23 + float(rng.uniform(-0.08, 0.08)), 121.47 + float(rng.uniform(-0.08, 0.08)))

    techs = tuple(
        Technician(
            technician_id=f"t{i}",
            location=point(),
            skills=frozenset(rng.choice(SKILLS, size=int(rng.integers(1, 3)), replace=False).tolist()),
            tier=int(rng.integers(1, 6)),
            max_jobs=int(rng.integers(2, 7)),
            shift=Window(DAY + 8 * HOUR, DAY + float(rng.choice([12, 14, 18])) * HOUR),
            vehicle_capacity=float(rng.choice([0.0, 4.0, 10.0])),
            assigned_jobs=int(rng.integers(0, 2)),
        )
        for i in range(n_techs)
    )
    jobs = []
    for j in range(n_jobs):
        start = DAY + float(rng.uniform(8, 15)) * HOUR
        windowed = rng.random() < 0.7
        pinned = techs[int(rng.integers(n_techs))].technician_id if rng.random() < 0.1 else None
        jobs.append(
            Job(
                job_id=f"j{j}",
                location=point(),
                required_skills=frozenset([str(rng.choice(SKILLS))]) if rng.random() < 0.8 else frozenset(),
                duration_minutes=float(rng.choice([30, 60, 90])),
                window=Window(start, start + float(rng.choice([2, 3, 4])) * HOUR) if windowed else None,
                priority=int(rng.integers(0, 4)),
                demand=float(rng.choice([0.0, 1.0, 3.0, 6.0])),
                pinned_technician_id=pinned,
            )
        )
    return tuple(jobs), techs


def check(problem: Problem, plan: Plan) -> None:
    """Every hard constraint of the problem, on the plan."""
    jobs = {j.job_id: j for j in problem.jobs}
    techs = {t.technician_id: t for t in problem.technicians}
    options = problem.options
    answered = [a.job_id for a in plan.assignments] + [u.job_id for u in plan.unassigned]
    assert sorted(answered) == sorted(jobs), "every job once, assigned or not"
    assert all(u.reason is not None and u.detail for u in plan.unassigned)

    by_tech: dict[str, list] = {}
    for a in plan.assignments:
        by_tech.setdefault(a.technician_id, []).append(a)
    for tech_id, mine in by_tech.items():
        tech = techs[tech_id]
        if tech.max_jobs:
            assert len(mine) + tech.assigned_jobs <= tech.max_jobs, tech_id
        load = 0.0
        for a in mine:
            job = jobs[a.job_id]
            assert job.required_skills <= tech.skills, (a.job_id, tech_id)
            assert job.pinned_technician_id in (None, tech_id), a.job_id
            assert km_between(tech.location, job.location) <= options.max_radius_km + 1e-6, a.job_id
            if tech.vehicle_capacity:
                assert job.demand <= tech.vehicle_capacity + 1e-9, a.job_id
            load += job.demand
            if a.arrival is not None:
                done = a.arrival + 60 * job.duration_minutes
                if job.window is not None:  # an arrival window: the start, and the end when asked
                    assert job.window.start - 1e-6 <= a.arrival <= job.latest_start() + SLACK_S, a.job_id
                if tech.shift is not None:
                    assert tech.shift.start - 1e-6 <= a.arrival and done <= tech.shift.end + SLACK_S, a.job_id
        if options.mode is Mode.ROUTE:
            if tech.vehicle_capacity:
                assert load <= tech.vehicle_capacity + 1e-9, tech_id
            mine.sort(key=lambda a: a.sequence)
            assert [a.sequence for a in mine] == list(range(len(mine)))
            for before, after in itertools.pairwise(mine):
                finished = before.arrival + 60 * jobs[before.job_id].duration_minutes
                travel_s = (
                    3600
                    * km_between(jobs[before.job_id].location, jobs[after.job_id].location)
                    / options.speed_kmh
                )
                assert after.arrival >= finished + travel_s - SLACK_S, (before.job_id, after.job_id)
        elif options.capacity is Capacity.SHIFT_MINUTES and tech.shift is not None:
            used = sum(
                60 * jobs[a.job_id].duration_minutes
                + 3600 * km_between(tech.location, jobs[a.job_id].location) / options.speed_kmh
                for a in mine
            )
            assert used <= tech.shift.end - tech.shift.start + SLACK_S, tech_id


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
