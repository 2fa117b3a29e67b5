"""ROUTE mode: day plans that respect windows, shifts, travel, loads, job counts, skills and pins."""

from __future__ import annotations

import dataclasses

import pytest

from models.dispatch.problem import Mode, Options, Problem, Reason, Status, Weights, Window
from models.dispatch.solver import solve
from tests.support import HOUR, job, tech

DAY = 1_800_000_000.0
ROUTE = Options(mode=Mode.ROUTE, time_limit_s=0.3, speed_kmh=30.0)


def shift(start_h: float, end_h: float) -> Window:
    return Window(DAY + start_h * HOUR, DAY + end_h * HOUR)


def routes(plan) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for a in sorted(plan.assignments, key=lambda a: (a.technician_id, a.sequence)):
        result.setdefault(a.technician_id, []).append(a.job_id)
    return result


def test_a_day_plan_orders_jobs_by_their_windows_with_travel_between_them() -> None:
    jobs = (
        job("late", km=6.0, duration_minutes=30, window=shift(13, 15)),
        job("early", km=3.0, duration_minutes=60, window=shift(9, 10)),
    )
    plan = solve(Problem(jobs, (tech("a", shift=shift(8, 18)),), ROUTE))
    assert plan.status is Status.FEASIBLE and routes(plan) == {"a": ["early", "late"]}
    by_id = {a.job_id: a for a in plan.assignments}
    assert DAY + 9 * HOUR <= by_id["early"].arrival <= DAY + 9 * HOUR + 60
    assert DAY + 13 * HOUR <= by_id["late"].arrival <= DAY + 14.5 * HOUR
    assert by_id["early"].travel_km == pytest.approx(3.0, abs=0.05)
    assert by_id["late"].travel_km == pytest.approx(3.0, abs=0.05)  # from the previous stop
    assert plan.travel_km == pytest.approx(12.0, abs=0.1)  # and back home


def test_jobs_that_cannot_follow_each_other_in_time_go_to_different_technicians() -> None:
    # Both at 9:00-10:00, 90 minutes each, 20 km apart: one technician cannot do both.
    jobs = (
        job("north", km=10.0, duration_minutes=90, window=shift(9, 11)),
        job("south", km=-10.0, duration_minutes=90, window=shift(9, 11)),
    )
    techs = (tech("a", shift=shift(8, 18)), tech("b", shift=shift(8, 18)))
    plan = solve(Problem(jobs, techs, ROUTE))
    assert len(plan.assignments) == 2 and len(routes(plan)) == 2


def test_vehicle_load_is_the_sum_of_demands_on_the_route() -> None:
    jobs = tuple(job(f"j{i}", km=1.0 + i, demand=2.0) for i in range(3))
    plan = solve(
        Problem(jobs, (tech("a", vehicle_capacity=4.0), tech("b", km=5.0, vehicle_capacity=4.0)), ROUTE)
    )
    assert all(len(r) <= 2 for r in routes(plan).values()) and len(plan.assignments) == 3


def test_max_jobs_caps_a_route_and_the_rest_is_reported() -> None:
    jobs = tuple(job(f"j{i}", km=1.0 + i, priority=i) for i in range(3))
    plan = solve(Problem(jobs, (tech("a", max_jobs=2),), ROUTE))
    assert len(plan.assignments) == 2
    assert {u.job_id: u.reason for u in plan.unassigned} == {"j0": Reason.CAPACITY_EXHAUSTED}


def test_skills_pins_and_prechecks_hold_in_route_mode() -> None:
    jobs = (
        job("needs_repair", km=1.0, required_skills=frozenset({"repair"})),
        job("promised", km=1.0, pinned_technician_id="far"),
        job("nobody", km=1.0, required_skills=frozenset({"welding"})),
    )
    techs = (
        tech("near", skills=frozenset({"install"})),
        tech("far", km=8.0, skills=frozenset({"install", "repair"})),
    )
    plan = solve(Problem(jobs, techs, ROUTE))
    placed = {a.job_id: a.technician_id for a in plan.assignments}
    assert placed == {"needs_repair": "far", "promised": "far"}
    assert {u.job_id: u.reason for u in plan.unassigned} == {"nobody": Reason.NO_QUALIFIED_TECHNICIAN}


def test_a_job_is_left_out_rather_than_break_the_shift() -> None:
    jobs = (job("long", km=1.0, duration_minutes=300),)
    plan = solve(Problem(jobs, (tech("a", shift=shift(8, 12)),), ROUTE))
    assert not plan.assignments and plan.unassigned[0].reason is Reason.NO_SHIFT_OVERLAP


def test_route_plans_are_deterministic_for_the_same_input() -> None:
    jobs = tuple(job(f"j{i}", km=(i * 7) % 11 - 5.0, duration_minutes=30) for i in range(12))
    techs = tuple(tech(f"t{i}", km=i - 2.0, max_jobs=4, shift=shift(8, 18)) for i in range(4))
    problem = Problem(jobs, techs, dataclasses.replace(ROUTE, weights=Weights(balance=0.0)))
    assert solve(problem).assignments == solve(problem).assignments
