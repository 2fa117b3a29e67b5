"""ASSIGN mode with shift minutes (the generalized assignment problem): CP-SAT, optimal on small cases."""

from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np
import pytest

from models.dispatch import eligibility
from models.dispatch.assign_flow import work_minutes
from models.dispatch.assign_gap import WHOLE_MODEL_PAIRS, gap_instance, shift_minutes
from models.dispatch.gap_bound import relax
from models.dispatch.gap_instance import GapInstance
from models.dispatch.gap_search import neighbourhood_search
from models.dispatch.problem import Capacity, Options, Problem, Reason, Status, Weights, Window
from models.dispatch.solver import solve
from tests.support import HOUR, job, tech

DAY = 1_800_000_000.0
MINUTES = Options(capacity=Capacity.SHIFT_MINUTES, time_limit_s=5.0, weights=Weights(balance=0.0))


def test_shift_minutes_limit_what_a_technician_takes_beyond_max_jobs() -> None:
    jobs = tuple(job(f"j{i}", km=0.0, duration_minutes=60, priority=i) for i in range(3))
    techs = (tech("a", max_jobs=5, shift=Window(DAY + 8 * HOUR, DAY + 10 * HOUR)),)
    counted = solve(Problem(jobs, techs, Options(weights=Weights(balance=0.0))))
    # By count alone all three go to a; its day holds two, so the count's optimum is not kept.
    assert len(counted.assignments) == 2 and counted.status is Status.FEASIBLE
    plan = solve(Problem(jobs, techs, MINUTES))
    assert {a.job_id for a in plan.assignments} == {"j1", "j2"}
    assert {u.job_id: u.reason for u in plan.unassigned} == {"j0": Reason.CAPACITY_EXHAUSTED}
    assert plan.status is Status.OPTIMAL and plan.bound == pytest.approx(plan.objective)


def test_travel_from_home_counts_against_the_shift() -> None:
    # 14 km at 30 km/h is 28 minutes out: jobs of 30 minutes take 58 each; two fit in 2 hours, not three.
    jobs = tuple(job(f"j{i}", km=14.0, duration_minutes=30) for i in range(3))
    plan = solve(Problem(jobs, (tech("a", shift=Window(DAY, DAY + 2 * HOUR)),), MINUTES))
    assert len(plan.assignments) == 2


def brute_force(problem: Problem) -> float:
    elig = eligibility.compute(problem)
    work, shifts = work_minutes(problem, elig), shift_minutes(problem)
    best = np.inf
    for choice in itertools.product(range(-1, len(problem.technicians)), repeat=len(problem.jobs)):
        used, load, cost = np.zeros(len(shifts)), np.zeros(len(shifts), dtype=int), 0.0
        for j, t in enumerate(choice):
            if t < 0:
                cost += elig.drop_penalty[j]
                continue
            if not elig.feasible[j, t]:
                cost = np.inf
                break
            used[t] += work[j, t]
            load[t] += 1
            cost += elig.pair_cost[j, t]
        if np.all(used <= shifts + 1e-9) and np.all(load <= elig.capacity):
            best = min(best, cost)
    return best


def small_problem(seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    jobs = tuple(
        job(
            f"j{i}",
            km=float(rng.uniform(-15, 15)),
            duration_minutes=int(rng.choice([30, 60, 90])),
            priority=int(rng.integers(0, 3)),
        )
        for i in range(5)
    )
    techs = tuple(
        tech(
            f"t{i}",
            km=float(rng.uniform(-15, 15)),
            tier=int(rng.integers(1, 4)),
            shift=Window(DAY, DAY + float(rng.choice([1.5, 2.5, 3.5])) * HOUR),
        )
        for i in range(3)
    )
    options = Options(
        capacity=Capacity.SHIFT_MINUTES,
        weights=Weights(balance=0.0, drop_penalty=float(rng.uniform(20, 60)), drop_penalty_per_priority=10.0),
    )
    return Problem(jobs, techs, options)


def instance_of(problem: Problem) -> GapInstance:
    elig = eligibility.compute(problem)
    return gap_instance(problem, elig, work_minutes(problem, elig))


@pytest.mark.parametrize("seed", range(8))
def test_cp_sat_matches_brute_force_on_small_random_instances(seed: int) -> None:
    problem = small_problem(seed)
    plan = solve(problem)
    assert plan.objective == pytest.approx(brute_force(problem), abs=0.01)


@pytest.mark.parametrize("seed", range(8))
def test_linear_relaxation_bounds_the_optimum_from_below(seed: int) -> None:
    problem = small_problem(seed)
    relaxation = relax(instance_of(problem), seconds=5.0)
    assert relaxation is not None
    assert relaxation.bound <= brute_force(problem) + 1e-6
    assert np.all(relaxation.share.sum(axis=1) <= 1 + 1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_neighbourhood_search_reaches_the_optimum_from_an_empty_plan(seed: int) -> None:
    problem = small_problem(seed)
    instance = instance_of(problem)
    nothing = np.full(len(problem.jobs), -1)
    found = neighbourhood_search(instance, instance.cost, nothing, time.perf_counter() + 1.0, workers=2)
    assert instance.fits(found)
    assert instance.objective(found) == pytest.approx(brute_force(problem), abs=0.01)


def test_large_instances_are_searched_within_their_shifts_close_to_the_bound() -> None:
    # 40 technicians × 200 jobs (about 80% of their minutes needed): past the size CP-SAT gets whole,
    # so the neighbourhood search answers.
    rng = np.random.default_rng(7)
    jobs = tuple(job(f"j{i}", km=float(rng.uniform(-20, 20)), duration_minutes=int(rng.integers(20, 90)))
                 for i in range(200))  # fmt: skip
    techs = tuple(tech(f"t{i}", km=float(rng.uniform(-20, 20)), shift=Window(DAY, DAY + 6 * HOUR))
                  for i in range(40))  # fmt: skip
    problem = Problem(jobs, techs, dataclasses.replace(MINUTES, time_limit_s=3.0))
    instance = instance_of(problem)
    assert int(instance.allowed.sum()) > WHOLE_MODEL_PAIRS
    plan = solve(problem)
    tech_index = {t.technician_id: k for k, t in enumerate(techs)}
    job_index = {j.job_id: k for k, j in enumerate(jobs)}
    chosen = np.full(len(jobs), -1)
    for a in plan.assignments:
        chosen[job_index[a.job_id]] = tech_index[a.technician_id]
    assert instance.fits(chosen)
    assert len(plan.assignments) + len(plan.unassigned) == len(jobs)
    assert plan.objective == pytest.approx(instance.objective(chosen))
    assert plan.bound <= plan.objective <= 1.02 * plan.bound
