"""City-scale ROUTE days split into regions: the same contract as every solver (every job once, every
hard constraint), on days made small enough to test by lowering the split threshold."""

from __future__ import annotations

from concurrent import futures

import pytest

from models.dispatch import regions
from models.dispatch.problem import GeoPoint, Job, Mode, Options, Problem, Status, Technician, Window
from models.dispatch.solver import solve
from tests.support import DAY, HOUR, check, random_day

ROUTE = Options(mode=Mode.ROUTE, time_limit_s=3.0, speed_kmh=30.0, max_radius_km=12.0)


@pytest.fixture(autouse=True)
def small_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(regions, "SPLIT_ABOVE_LOCATIONS", 30)
    monkeypatch.setattr(regions, "JOBS_PER_REGION", 20)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_split_day_keeps_every_hard_constraint(seed: int) -> None:
    jobs, techs = random_day(seed, n_jobs=90, n_techs=18)
    problem = Problem(jobs, techs, ROUTE)
    assert regions.should_split(problem) and len(regions.split(problem)) >= 3
    plan = solve(problem)
    assert plan.status is Status.FEASIBLE and plan.assignments
    check(problem, plan)


def test_regions_run_in_the_executors_and_answer_within_the_limit() -> None:
    jobs, techs = random_day(4, n_jobs=90, n_techs=18)
    problem = Problem(jobs, techs, ROUTE)
    with futures.ProcessPoolExecutor(1) as a, futures.ProcessPoolExecutor(1) as b:
        plan = solve(problem, (a, b))
    check(problem, plan)
    assert plan.solve_ms <= 1000 * ROUTE.time_limit_s * 1.05 + 500


def test_jobs_their_region_cannot_place_are_repaired_into_a_neighbours_routes() -> None:
    """The technicians living in the west lack the skill the western jobs need; those in the east, 10 km
    away, have it and room: the western jobs cross the border."""
    west, east = GeoPoint(31.20, 121.40), GeoPoint(31.20, 121.505)
    shift = Window(DAY + 8 * HOUR, DAY + 20 * HOUR)
    jobs = tuple(
        Job(f"{side}{k}", GeoPoint(at.lat + 0.0005 * k, at.lng), skills, duration_minutes=20.0)
        for side, at, skills in (("w", west, frozenset({"repair"})), ("e", east, frozenset()))
        for k in range(20)
    )
    techs = tuple(
        Technician(f"{side}t{k}", at, skills, max_jobs=12, shift=shift)
        for side, at, skills in (("w", west, frozenset()), ("e", east, frozenset({"repair"})))
        for k in range(4)
    )
    problem = Problem(jobs, techs, ROUTE)
    split = regions.split(problem)
    assert any(all(techs[t].technician_id.startswith("w") for t in r.technicians) for r in split)
    plan = solve(problem)
    check(problem, plan)
    crossed = [a for a in plan.assignments if a.job_id.startswith("w")]
    assert crossed and all(a.technician_id.startswith("e") for a in crossed)
