"""City-scale ROUTE days split into regions: the same contract as every solver (every job once, every
hard constraint), on days made small enough to test by lowering the split threshold."""

from __future__ import annotations

import dataclasses
from concurrent import futures

import numpy as np
import pytest

from models.dispatch import regions, travel
from models.dispatch.problem import GeoPoint, Job, Mode, Options, Problem, Status, Technician, Window
from models.dispatch.solver import solve
from tests.support import DAY, HOUR, check, km_between, random_day

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


def test_a_split_day_cuts_the_requests_matrices_with_the_end_locations_last() -> None:
    # Every third technician ends the day 2 km south of where it starts; road distances are 1.3 x the
    # great circle, over technicians, jobs, then those ends: each region's day must read its own rows.
    jobs, techs = random_day(3, n_jobs=90, n_techs=18)
    techs = tuple(
        dataclasses.replace(t, end_location=GeoPoint(t.location.lat - 0.018, t.location.lng))
        if k % 3 == 0
        else t
        for k, t in enumerate(techs)
    )
    points = [t.location for t in techs] + [j.location for j in jobs]
    points += [t.end_location for t in techs if t.end_location is not None]
    km = np.array([[1.3 * km_between(a, b) for b in points] for a in points])
    problem = Problem(jobs, techs, dataclasses.replace(ROUTE, distance_km=km.ravel()))
    assert regions.should_split(problem)
    n_tech = len(techs)
    for region in regions.split(problem):
        sub = regions.subproblem(problem, region)
        for k, t in enumerate(
            region.technicians.tolist()
        ):  # home to end, home to each job: as the request says
            assert travel.travel(sub, np.array([k]), np.array([travel.end_node(sub, k)]))[0] == pytest.approx(
                km[t, travel.end_node(problem, t)]
            )
            assert travel.technicians_to_jobs(sub)[0][:, k] == pytest.approx(km[t, n_tech + region.jobs])
    plan = solve(problem)
    assert plan.assignments
    check(problem, plan)  # every route's km from the matrix, to where its day ends


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
