"""ASSIGN mode: hard constraints, unassigned reasons, optimality, determinism, validation."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from models.dispatch import eligibility
from models.dispatch.problem import (
    GeoPoint,
    Job,
    Options,
    Problem,
    Reason,
    Status,
    Weights,
    Window,
)
from models.dispatch.rank import rank
from models.dispatch.solver import solve
from models.errors import FieldError
from tests.support import CENTER, HOUR, job, tech


def assigned(plan) -> dict[str, str]:
    return {a.job_id: a.technician_id for a in plan.assignments}


def reasons(plan) -> dict[str, Reason]:
    return {u.job_id: u.reason for u in plan.unassigned}


def test_every_job_is_either_assigned_or_unassigned_exactly_once() -> None:
    jobs = tuple(job(f"j{i}", km=i, required_skills=frozenset({"install"})) for i in range(6))
    techs = (tech("a", max_jobs=2), tech("b", max_jobs=1))
    plan = solve(Problem(jobs, techs))
    ids = [a.job_id for a in plan.assignments] + [u.job_id for u in plan.unassigned]
    assert sorted(ids) == sorted(j.job_id for j in jobs)
    assert plan.status is Status.OPTIMAL


def test_technician_must_have_every_required_skill() -> None:
    jobs = (job("j", required_skills=frozenset({"install", "repair"})),)
    techs = (
        tech("near", km=1.0, skills=frozenset({"install"})),
        tech("far", km=9.0, skills=frozenset({"install", "repair"})),
    )
    assert assigned(solve(Problem(jobs, techs))) == {"j": "far"}


def test_no_technician_with_the_skill_is_reported_by_name() -> None:
    plan = solve(Problem((job("j", required_skills=frozenset({"plumbing"})),), (tech("a"),)))
    assert reasons(plan) == {"j": Reason.NO_QUALIFIED_TECHNICIAN}
    assert "plumbing" in plan.unassigned[0].detail


def test_max_jobs_caps_each_technician_and_overflow_is_capacity_exhausted() -> None:
    jobs = tuple(job(f"j{i}", priority=i) for i in range(3))
    plan = solve(Problem(jobs, (tech("a", max_jobs=2),)))
    assert len(plan.assignments) == 2
    # The lowest-priority job is the one left out, and the detail names the jobs that won.
    assert reasons(plan) == {"j0": Reason.CAPACITY_EXHAUSTED}
    assert "j2" in plan.unassigned[0].detail


def test_assigned_jobs_count_against_max_jobs() -> None:
    plan = solve(Problem((job("j"),), (tech("a", max_jobs=2, assigned_jobs=2),)))
    assert reasons(plan) == {"j": Reason.CAPACITY_EXHAUSTED}


def test_the_window_bounds_the_arrival_and_must_finish_its_end_too() -> None:
    day = 1_800_000_000.0
    window = Window(day + 9 * HOUR, day + 10 * HOUR)
    # 14 km at 30 km/h is 28 minutes: leaving at 9:00 arrives 9:28 and is done at 9:58; leaving at 9:10
    # arrives 9:38 (inside the window) and is done at 10:08 (after it); leaving at 9:40 arrives 10:08.
    fits = tech("fits", shift=Window(day + 9 * HOUR, day + 17 * HOUR))
    late = tech("late", shift=Window(day + 9 * HOUR + 600, day + 17 * HOUR))
    too_late = tech("too_late", shift=Window(day + 9 * HOUR + 2400, day + 17 * HOUR))
    arrival = (job("j", km=14.0, duration_minutes=30, window=window),)
    assert assigned(solve(Problem(arrival, (late,)))) == {"j": "late"}
    assert reasons(solve(Problem(arrival, (too_late,)))) == {"j": Reason.NO_SHIFT_OVERLAP}
    whole = (job("j", km=14.0, duration_minutes=30, window=window, must_finish_in_window=True),)
    plan = solve(Problem(whole, (late, fits)))
    assert assigned(plan) == {"j": "fits"}
    assert plan.assignments[0].arrival == pytest.approx(day + 9 * HOUR + 28 * 60, abs=1.0)
    plan = solve(Problem(whole, (late,)))
    assert reasons(plan) == {"j": Reason.NO_SHIFT_OVERLAP}
    assert "finish it there" in plan.unassigned[0].detail


def test_a_long_job_in_a_short_arrival_window_is_assignable() -> None:
    """Measured before: every customer of Solomon C101 (90-minute jobs, one-hour windows) came back
    NO_SHIFT_OVERLAP, as if the whole job had to fit in the window."""
    day = 1_800_000_000.0
    jobs = (job("j", km=1.0, duration_minutes=90, window=Window(day + 9 * HOUR, day + 10 * HOUR)),)
    plan = solve(Problem(jobs, (tech("a", shift=Window(day + 8 * HOUR, day + 17 * HOUR)),)))
    assert assigned(plan) == {"j": "a"}


def test_demand_above_every_vehicle_is_reported() -> None:
    plan = solve(
        Problem((job("j", demand=5.0),), (tech("a", vehicle_capacity=2.0), tech("b", vehicle_capacity=4.0)))
    )
    assert reasons(plan) == {"j": Reason.DEMAND_EXCEEDS_CAPACITY}
    assert "4" in plan.unassigned[0].detail
    # vehicle_capacity 0 means no limit
    assert assigned(solve(Problem((job("j", demand=5.0),), (tech("c"),)))) == {"j": "c"}


def test_radius_limits_travel() -> None:
    options = Options(max_radius_km=5.0)
    plan = solve(Problem((job("j", km=8.0),), (tech("a"),), options))
    assert reasons(plan) == {"j": Reason.OUT_OF_RADIUS}
    assert "8.0 km" in plan.unassigned[0].detail


def test_pinned_job_stays_with_its_technician_even_when_another_is_nearer() -> None:
    jobs = (job("j", km=1.0, pinned_technician_id="far"),)
    techs = (tech("near", km=1.0), tech("far", km=20.0))
    assert assigned(solve(Problem(jobs, techs))) == {"j": "far"}


def test_pins_to_missing_or_unqualified_technicians_are_reported() -> None:
    jobs = (
        job("missing", pinned_technician_id="ghost"),
        job("unqualified", pinned_technician_id="a", required_skills=frozenset({"repair"})),
    )
    plan = solve(Problem(jobs, (tech("a"),)))
    assert reasons(plan) == {
        "missing": Reason.PINNED_TECHNICIAN_MISSING,
        "unqualified": Reason.PINNED_TECHNICIAN_UNQUALIFIED,
    }


def test_pinned_job_wins_the_last_slot_over_a_higher_priority_job() -> None:
    jobs = (job("urgent", priority=50), job("promised", pinned_technician_id="a"))
    plan = solve(Problem(jobs, (tech("a", max_jobs=1),)))
    assert assigned(plan) == {"promised": "a"}
    assert reasons(plan) == {"urgent": Reason.CAPACITY_EXHAUSTED}


def test_job_costing_more_than_its_penalty_is_too_costly() -> None:
    options = Options(weights=Weights(drop_penalty=5.0, drop_penalty_per_priority=0.0))
    plan = solve(Problem((job("j", km=30.0),), (tech("a"),), options))
    assert reasons(plan) == {"j": Reason.TOO_COSTLY}


def test_higher_tier_gets_the_urgent_job_when_travel_is_equal() -> None:
    jobs = (job("urgent", priority=3),)
    techs = (tech("junior", tier=1), tech("senior", tier=3))
    assert assigned(solve(Problem(jobs, techs))) == {"urgent": "senior"}


def test_balance_spreads_work_over_qualified_technicians() -> None:
    jobs = tuple(job(f"j{i}", km=1.0) for i in range(4))
    techs = (tech("a", km=0.0), tech("b", km=0.5))
    plan = solve(Problem(jobs, techs))
    loads = np.bincount([0 if a.technician_id == "a" else 1 for a in plan.assignments], minlength=2)
    assert loads.tolist() == [2, 2]
    without_balance = solve(Problem(jobs, techs, Options(weights=Weights(balance=0.0))))
    # b is nearer to every job (1 km north), so without the balance term it takes them all.
    assert {a.technician_id for a in without_balance.assignments} == {"b"}


def brute_force_objective(problem: Problem) -> float:
    elig = eligibility.compute(problem)
    n_jobs, n_tech = elig.feasible.shape
    best = np.inf
    for choice in itertools.product(range(-1, n_tech), repeat=n_jobs):
        load = np.zeros(n_tech, dtype=int)
        cost = 0.0
        ok = True
        for j, t in enumerate(choice):
            if t < 0:
                cost += elig.drop_penalty[j]
                continue
            if not elig.feasible[j, t]:
                ok = False
                break
            cost += elig.pair_cost[j, t] + problem.options.weights.balance * (
                problem.technicians[t].assigned_jobs + load[t]
            )
            load[t] += 1
        if ok and np.all(load <= elig.capacity):
            best = min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(12))
def test_min_cost_flow_matches_brute_force_on_small_random_instances(seed: int) -> None:
    rng = np.random.default_rng(seed)
    skills = ["a", "b", "c"]
    jobs = tuple(
        job(
            f"j{i}",
            km=float(rng.uniform(-20, 20)),
            required_skills=frozenset(rng.choice(skills, size=rng.integers(0, 3), replace=False).tolist()),
            priority=int(rng.integers(0, 3)),
        )
        for i in range(5)
    )
    techs = tuple(
        tech(
            f"t{i}",
            km=float(rng.uniform(-20, 20)),
            skills=frozenset(rng.choice(skills, size=rng.integers(1, 4), replace=False).tolist()),
            tier=int(rng.integers(1, 4)),
            max_jobs=int(rng.integers(1, 3)),
            assigned_jobs=int(rng.integers(0, 2)),
        )
        for i in range(3)
    )
    options = Options(weights=Weights(drop_penalty=float(rng.uniform(5, 40)), drop_penalty_per_priority=10.0))
    problem = Problem(jobs, techs, options)
    plan = solve(problem)
    assert plan.objective == pytest.approx(brute_force_objective(problem), abs=0.01)


def test_same_input_gives_the_same_plan() -> None:
    rng = np.random.default_rng(3)
    jobs = tuple(job(f"j{i}", km=float(rng.uniform(-5, 5))) for i in range(40))
    techs = tuple(tech(f"t{i}", km=float(rng.uniform(-5, 5)), max_jobs=3) for i in range(10))
    first, second = solve(Problem(jobs, techs)), solve(Problem(jobs, techs))
    assert first.assignments == second.assignments and first.unassigned == second.unassigned


def test_request_matrices_replace_haversine() -> None:
    jobs = (job("j", km=1.0),)
    techs = (tech("a", km=0.0), tech("b", km=50.0))
    # Locations: a, b, j. By road, b is 1 km from j and a is 100.
    distance = np.array([[0, 0, 100], [0, 0, 1], [100, 1, 0]], dtype=float).ravel()
    plan = solve(Problem(jobs, techs, Options(distance_km=distance)))
    assert assigned(plan) == {"j": "b"}
    assert plan.assignments[0].travel_km == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("problem", "field"),
    [
        (Problem((job("x"), job("x")), (tech("a"),)), "jobs[1].job_id"),
        (Problem((job("x"),), (tech("a"), tech("a"))), "technicians[1].technician_id"),
        (Problem((Job("x", GeoPoint(91.0, 0.0)),), ()), "jobs[0].location.lat"),
        (Problem((Job("x", GeoPoint(0.0, float("nan"))),), ()), "jobs[0].location.lng"),
        (Problem((job("x", window=Window(10.0, 5.0)),), ()), "jobs[0].time_window"),
        (Problem((job("x", duration_minutes=-5),), ()), "jobs[0].duration_minutes"),
        (Problem((job("x", priority=-1),), ()), "jobs[0].priority"),
        (Problem((job("x", demand=-1.0),), ()), "jobs[0].demand"),
        (Problem((), (tech("a", max_jobs=-1),)), "technicians[0].max_jobs"),
        (Problem((), (tech("a", shift=Window(5.0, 1.0)),)), "technicians[0].shift"),
        (
            Problem((job("x"),), (tech("a"),), Options(distance_km=np.zeros(3))),
            "options.distance_matrix.values",
        ),
        (
            Problem((job("x"),), (tech("a"),), Options(duration_min=-np.ones(4))),
            "options.duration_matrix.values",
        ),
        (Problem((), (), Options(speed_kmh=0.0)), "options.speed_kmh"),
        (Problem((), (), Options(weights=Weights(balance=-1.0))), "options.weights.balance"),
    ],
)
def test_invalid_input_names_the_field(problem: Problem, field: str) -> None:
    with pytest.raises(FieldError) as caught:
        solve(problem)
    assert caught.value.field == field


def test_rank_orders_qualified_technicians_by_cost() -> None:
    techs = (tech("far", km=9.0), tech("near", km=2.0), tech("unskilled", km=1.0, skills=frozenset({"x"})))
    ranking = rank(job("j", km=1.0, required_skills=frozenset({"install"})), techs, Options())
    assert [r.technician_id for r in ranking.technicians] == ["near", "far"]
    assert ranking.technicians[0].score > ranking.technicians[1].score
    assert ranking.technicians[0].travel_km == pytest.approx(1.0, abs=0.01)


def test_rank_counts_current_load_and_honours_limit() -> None:
    techs = (tech("busy", km=1.0, assigned_jobs=5), tech("idle", km=1.5))
    ranking = rank(job("j", km=1.0), techs, Options(), limit=1)
    assert [r.technician_id for r in ranking.technicians] == ["idle"]


def test_rank_says_why_nobody_qualifies() -> None:
    ranking = rank(job("j", required_skills=frozenset({"welding"})), (tech("a"),), Options())
    assert ranking.technicians == [] and ranking.why_nobody.reason is Reason.NO_QUALIFIED_TECHNICIAN


def test_rank_names_job_fields_as_the_request_does() -> None:
    with pytest.raises(FieldError) as caught:
        rank(dataclasses.replace(job("j"), duration_minutes=-1), (tech("a"),), Options())
    assert caught.value.field == "job.duration_minutes"


def test_pruned_flow_widens_jobs_left_out_and_reports_feasible(monkeypatch: pytest.MonkeyPatch) -> None:
    from models.dispatch import assign_flow

    jobs = tuple(job(f"j{i}", km=0.1 * i) for i in range(12))
    techs = (tech("near", max_jobs=2), *(tech(f"t{i}", km=3.0 + i, max_jobs=2) for i in range(6)))
    exact = solve(Problem(jobs, techs))
    monkeypatch.setattr(assign_flow, "PRUNE_ABOVE_PAIRS", 0)
    monkeypatch.setattr(assign_flow, "PRUNE_K", 1)  # everyone wants "near", who takes two
    pruned = solve(Problem(jobs, techs))
    assert exact.status is Status.OPTIMAL and pruned.status is Status.FEASIBLE
    assert len(pruned.assignments) == len(exact.assignments) == 12
    assert pruned.objective == pytest.approx(exact.objective)


def test_requests_too_large_to_solve_are_refused_not_attempted(monkeypatch: pytest.MonkeyPatch) -> None:
    from models.dispatch import problem as problem_module

    monkeypatch.setattr(problem_module, "MAX_PAIRS", 5)
    with pytest.raises(FieldError) as caught:
        solve(Problem(tuple(job(f"j{i}") for i in range(3)), (tech("a"), tech("b"))))
    assert caught.value.field == "jobs" and "split" in caught.value.message


def test_eligibility_computed_in_blocks_on_threads_matches_a_direct_computation() -> None:
    # 700 jobs: three row blocks, filled on two threads.
    rng = np.random.default_rng(3)
    jobs = tuple(
        Job(
            f"j{i}",
            GeoPoint(CENTER.lat + rng.uniform(-0.3, 0.3), CENTER.lng + rng.uniform(-0.3, 0.3)),
            required_skills=frozenset({"install"} if i % 3 else {"install", "repair"}),
            duration_minutes=60,
            window=Window(1e9 + rng.uniform(0, 4) * HOUR, 1e9 + rng.uniform(5, 9) * HOUR),
            priority=int(rng.integers(0, 3)),
        )
        for i in range(700)
    )
    techs = tuple(
        tech(f"t{i}", km=float(rng.uniform(-20, 20)), tier=1 + i % 3, shift=Window(1e9, 1e9 + 8 * HOUR),
             skills=frozenset({"install", "repair"} if i % 2 else {"install"}))
        for i in range(40)
    )  # fmt: skip
    threaded = eligibility.compute(Problem(jobs, techs, Options(workers=2)))
    alone = eligibility.compute(Problem(jobs, techs, Options(workers=1)))
    for name in ("feasible", "km", "minutes", "pair_cost"):
        np.testing.assert_array_equal(getattr(threaded, name), getattr(alone, name))

    lat = np.radians([[j.location.lat] for j in jobs]), np.radians([[t.location.lat for t in techs]])
    dlng = np.radians([[j.location.lng] for j in jobs]) - np.radians([[t.location.lng for t in techs]])
    haversine = np.sin((lat[0] - lat[1]) / 2) ** 2 + np.cos(lat[0]) * np.cos(lat[1]) * np.sin(dlng / 2) ** 2
    np.testing.assert_allclose(threaded.km, 2 * 6371.0088 * np.arcsin(np.sqrt(haversine)), atol=1e-6)
    begin = np.maximum(
        [[j.window.start] for j in jobs], [[t.shift.start for t in techs]] + threaded.minutes * 60
    )
    fits = begin + 3600 <= np.minimum([[j.window.end] for j in jobs], [[t.shift.end for t in techs]])
    skilled = np.array([[j.required_skills <= t.skills for t in techs] for j in jobs])
    np.testing.assert_array_equal(threaded.feasible, fits & skilled)
    assert threaded.feasible.any() and not threaded.feasible.all()
