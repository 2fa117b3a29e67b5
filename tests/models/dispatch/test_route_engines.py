"""Every ROUTE search the portfolio may run keeps the day's hard constraints on its own (the contract
suite reaches only the first engine a day gets), and each day gets the searches its structure calls for."""

from __future__ import annotations

import dataclasses
import time

import pytest

from models.dispatch import eligibility, route, route_engines, route_plan
from models.dispatch.problem import Break, GeoPoint, Mode, Options, Problem, Status, Window
from tests.support import DAY, HOUR, check, job, near, random_day, tech, with_breaks

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


def _ending_elsewhere(problem: Problem) -> Problem:
    """The day with every other technician's day ending 4 km north of where it starts (a re-plan's
    technician, where the last job was, going home)."""
    techs = tuple(
        dataclasses.replace(t, end_location=GeoPoint(t.location.lat + 4 / 111.195, t.location.lng))
        if k % 2 == 0
        else t
        for k, t in enumerate(problem.technicians)
    )
    return dataclasses.replace(problem, technicians=techs)


@pytest.mark.parametrize("engine", [*ENGINES, *REPLAN_ENGINES[2:]], ids=str)
def test_every_search_ends_each_day_at_the_technicians_end_location(engine: route_engines.Engine) -> None:
    problem = _ending_elsewhere(_day(3))
    plan = route.search_alone(problem, engine, time.time() + problem.options.time_limit_s)
    assert plan.assignments
    check(problem, plan)  # each route's km run to its end, and it is reached within the shift
    assert plan.travel_km == pytest.approx(sum(r.travel_km for r in plan.routes))


@pytest.mark.parametrize("engine", ENGINES, ids=str)
def test_every_search_works_towards_where_the_day_ends(engine: route_engines.Engine) -> None:
    # From home (0 km) to an end 10 km north, jobs at 3 and 7 km: in that order the day drives 10 km,
    # the other way 7 + 4 + 3 = 14.
    problem = Problem(
        (job("far", km=7.0), job("near", km=3.0)),
        (tech("t", end_location=near(10.0), shift=Window(DAY + 8 * HOUR, DAY + 18 * HOUR)),),
        OPTIONS,
    )
    plan = route.search_alone(problem, engine, time.time() + 0.5)
    assert [r.job_ids for r in plan.routes] == [("near", "far")]
    assert plan.travel_km == pytest.approx(10.0, rel=1e-3)
    check(problem, plan)


def test_a_day_without_jobs_drives_nothing_wherever_it_would_end() -> None:
    # b has a break to plan but no job it can do; its home is 20 km away: no route of the plan drives it.
    lunch = Break(Window(DAY + 12 * HOUR, DAY + 13 * HOUR), 30.0)
    shift = Window(DAY + 8 * HOUR, DAY + 18 * HOUR)
    problem = Problem(
        (job("j", km=2.0),),
        (
            tech("a", shift=shift),
            tech("b", skills=frozenset({"clean"}), shift=shift, breaks=(lunch,), end_location=near(20.0)),
        ),
        OPTIONS,
    )
    plan = route.search_alone(problem, route_engines.SEARCHES[0], time.time() + 0.5)
    routes = {r.technician_id: r for r in plan.routes}
    assert routes["b"].job_ids == () and routes["b"].travel_km == 0.0 and len(routes["b"].breaks) == 1
    assert plan.travel_km == pytest.approx(routes["a"].travel_km) == pytest.approx(4.0, rel=1e-3)


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
    polished = route_engines.Polished(route_engines.HGS_SEEDS[0].seed)
    assert chosen == [polished, route_engines.Fresh(polished)]
    lunch = dataclasses.replace(problem, technicians=with_breaks(problem.technicians))
    assert route_engines.engines(lunch, eligibility.compute(lunch)) == [
        route_engines.SEARCHES[0],
        route_engines.Fresh(route_engines.SEARCHES[2]),
    ]


@pytest.mark.parametrize("engine", [route_engines.SEARCHES[0], route_engines.SEARCHES[2]], ids=str)
def test_the_searches_for_days_with_breaks_keep_them(engine: route_engines.Engine) -> None:
    problem = dataclasses.replace(_day(5), technicians=with_breaks(_day(5).technicians))
    plan = route.search_alone(problem, engine, time.time() + problem.options.time_limit_s)
    assert plan.assignments
    check(problem, plan)


def test_pyvrp_gives_a_job_needing_several_skills_only_to_a_technician_with_all_of_them() -> None:
    both = frozenset({"install", "repair"})
    jobs = tuple(job(f"j{k}", km=0.5 + 0.3 * k, required_skills=both) for k in range(4)) + tuple(
        job(f"i{k}", km=0.4 + 0.3 * k, required_skills=frozenset({"install"})) for k in range(3)
    )
    techs = (
        tech("installer", skills=frozenset({"install"})),
        tech("repairer", skills=frozenset({"repair"})),
        tech("all-round", km=3.0, skills=frozenset({"install", "repair", "clean"}), max_jobs=3),
        tech("idle", skills=frozenset({"install"}), max_jobs=0),
    )
    problem = Problem(jobs, techs, dataclasses.replace(OPTIONS, max_radius_km=50.0))
    plan = route.search_alone(problem, route_engines.HGS_SEEDS[0], time.time() + 1.0)
    check(problem, plan)
    holders = {a.job_id: a.technician_id for a in plan.assignments}
    assert {holders.get(f"j{k}") for k in range(4)} <= {"all-round", None}
    assert sum(holders.get(f"j{k}") == "all-round" for k in range(4)) == 3  # its max_jobs, all on skills
    assert {holders.get(f"i{k}") for k in range(3)} == {"installer"}


def test_polishing_answers_its_better_plan_and_never_worse_than_the_plan_it_started_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    problem = _day(1)
    elig = eligibility.compute(problem)
    real = route.route_hgs.solve
    starts = []

    def recording(*args, **kwargs):
        starts.append(kwargs["start"])
        return real(*args, **kwargs)

    monkeypatch.setattr(route.route_hgs, "solve", recording)
    polished = route.run(problem, elig, route_engines.Polished(1), time.time() + 1.0)
    (first,) = starts
    check(problem, polished)
    assert first is not None and first.assignments
    assert polished.objective <= first.objective + 1e-6
    assert polished.solve_ms >= 0.9 * 1000  # the whole call, both stages

    # A PyVRP plan that places nothing loses to OR-Tools' plan, whatever it is.
    left_out = route_plan.leftover(problem, elig, set())
    empty = dataclasses.replace(first, assignments=[], routes=(), unassigned=left_out, travel_km=0.0)
    monkeypatch.setattr(route.route_hgs, "solve", lambda *args, **kwargs: empty)
    assert route.run(problem, elig, route_engines.Polished(1), time.time() + 1.0).assignments


def test_a_fresh_search_ignores_the_plan_being_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    problem = _replanned(4)
    elig = eligibility.compute(problem)
    calls = []

    def counted(*args):
        calls.append(1)
        return route_plan.current_days(*args)

    monkeypatch.setattr(route, "current_days", counted)
    monkeypatch.setattr(route.route_hgs, "current_days", counted)
    route.run(problem, elig, route_engines.Fresh(route_engines.Polished(1)), time.time() + 1.0)
    assert not calls
    route.run(problem, elig, route_engines.Polished(1), time.time() + 1.0)
    assert calls


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
    assert route_engines.interchangeable(plain, eligibility.compute(plain))
    assert not route_engines.interchangeable(problem, eligibility.compute(problem))
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
