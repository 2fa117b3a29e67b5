"""Every ROUTE search the portfolio may run keeps the day's hard constraints on its own (the contract
suite reaches only the first engine a day gets), and each day gets the searches its structure calls for."""

from __future__ import annotations

import dataclasses
import time

import pytest

from models.dispatch import eligibility, route, route_engines
from models.dispatch.problem import Mode, Options, Problem, Status
from tests.support import check, random_day, with_breaks

ENGINES = [*route_engines.SEARCHES, route_engines.HGS_SEEDS[0], route_engines.Polished(1)]
REPLAN_ENGINES = [
    route_engines.SEARCHES[0],
    route_engines.HGS_SEEDS[0],
    route_engines.Fresh(route_engines.SEARCHES[0]),
    route_engines.Fresh(route_engines.Polished(1)),
]
OPTIONS = Options(mode=Mode.ROUTE, time_limit_s=1.0, speed_kmh=30.0, max_radius_km=12.0)


def _day(seed: int) -> Problem:
    jobs, techs = random_day(seed, n_jobs=40, n_techs=8)
    return Problem(jobs, techs, OPTIONS)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("engine", ENGINES, ids=str)
def test_every_search_keeps_skills_pins_radius_loads_counts_and_windows(
    engine: route_engines.Engine, seed: int
) -> None:
    problem = _day(seed)
    plan = route.search_alone(problem, engine, time.time() + problem.options.time_limit_s)
    assert plan.status is Status.FEASIBLE
    assert plan.assignments
    check(problem, plan)


def _replanned(seed: int) -> Problem:
    """The day with every job a first plan placed held by its technician, and a fifth of them moved to
    the next technician by index: a plan worth changing."""
    problem = _day(seed)
    plan = route.search_alone(problem, route_engines.SEARCHES[0], time.time() + 0.5)
    ids = [t.technician_id for t in problem.technicians]
    held = {a.job_id: a.technician_id for a in plan.assignments}
    jobs = tuple(
        dataclasses.replace(
            j,
            current_technician_id=(
                ids[(ids.index(held[j.job_id]) + 1) % len(ids)] if k % 5 == 0 else held[j.job_id]
            )
            if j.job_id in held
            else None,
        )
        for k, j in enumerate(problem.jobs)
    )
    return dataclasses.replace(problem, jobs=jobs)


@pytest.mark.parametrize("engine", REPLAN_ENGINES, ids=str)
def test_every_re_plan_search_keeps_the_hard_constraints_and_counts_its_moves(
    engine: route_engines.Engine,
) -> None:
    problem = _replanned(4)
    plan = route.search_alone(problem, engine, time.time() + problem.options.time_limit_s)
    check(problem, plan)
    current = {j.job_id: j.current_technician_id for j in problem.jobs}
    moved = [a.job_id for a in plan.assignments if current[a.job_id] not in (None, a.technician_id)]
    assert sorted(a.job_id for a in plan.assignments if a.reassigned) == sorted(moved)


def test_a_re_plan_searches_once_from_the_plan_it_replaces_and_once_from_scratch() -> None:
    problem = _replanned(4)
    chosen = route_engines.engines(problem, eligibility.compute(problem))
    assert chosen == [
        route_engines.SEARCHES[0],
        route_engines.Fresh(route_engines.Polished(route_engines.HGS_SEEDS[0].seed)),
    ]
    lunch = dataclasses.replace(problem, technicians=with_breaks(problem.technicians))
    assert route_engines.engines(lunch, eligibility.compute(lunch)) == [
        route_engines.SEARCHES[0],
        route_engines.Fresh(route_engines.SEARCHES[2]),
    ]


def test_polishing_never_answers_worse_than_the_plan_it_started_from() -> None:
    problem = _day(3)
    elig = eligibility.compute(problem)
    polished = route.run(problem, elig, route_engines.Polished(1), time.time() + 1.0)
    first = route.run(
        problem, elig, route_engines.SEARCHES[0], time.time() + route_engines.POLISH_SHARE * 1.0
    )
    check(problem, polished)
    # The same OR-Tools search for the same share of the time, then PyVRP: never a worse objective
    # (the first stage stops by the clock, so allow for it reaching a slightly different plan).
    assert polished.objective <= first.objective * 1.02


def test_each_day_gets_the_searches_its_structure_calls_for() -> None:
    problem = _day(1)
    skilled = route_engines.engines(problem, eligibility.compute(problem))
    assert skilled == [route_engines.SEARCHES[0], route_engines.Polished(route_engines.HGS_SEEDS[0].seed)]
    plain = dataclasses.replace(
        problem,
        jobs=tuple(
            dataclasses.replace(j, required_skills=frozenset(), pinned_technician_id=None)
            for j in problem.jobs
        ),
        options=dataclasses.replace(OPTIONS, max_radius_km=None),
    )
    assert route_engines.interchangeable(plain) and not route_engines.interchangeable(problem)
    balanced = route_engines.engines(plain, eligibility.compute(plain))
    assert balanced == [
        route_engines.HGS_SEEDS[0],
        route_engines.SEARCHES[0],
    ]  # the default weights price balance
    travel_only = dataclasses.replace(
        plain,
        options=dataclasses.replace(
            plain.options, weights=dataclasses.replace(plain.options.weights, balance=0.0)
        ),
    )
    assert route_engines.engines(travel_only, eligibility.compute(travel_only)) == list(
        route_engines.HGS_SEEDS
    )
    # Breaks keep a day from PyVRP: OR-Tools' searches, savings' partner only where technicians differ.
    for day, partner in ((problem, route_engines.SEARCHES[2]), (plain, route_engines.SEARCHES[1])):
        pausing = dataclasses.replace(day, technicians=with_breaks(day.technicians))
        assert route_engines.engines(pausing, eligibility.compute(pausing)) == [
            route_engines.SEARCHES[0],
            partner,
        ]
