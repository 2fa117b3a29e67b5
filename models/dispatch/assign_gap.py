"""ASSIGN mode when shift minutes count: the generalized assignment problem, with CP-SAT.

Each job takes its travel from the technician's location plus its time on site out of the
technician's shift, so what a technician can still take depends on what it already has: no longer a
transportation problem. When the minutes cannot bind (no technician could fill its shift even with its
longest feasible jobs) the exact min-cost flow still answers; otherwise CP-SAT searches from a good
start (the flow's plan, cut down to fit the shifts) within the time limit, and returns the best plan
with the bound it proved.
"""

from __future__ import annotations

import time

import numpy as np
from ortools.sat.python import cp_model

from models.dispatch.assign_flow import plan_from_assignment, solve_assign, work_minutes
from models.dispatch.eligibility import Eligibility
from models.dispatch.problem import Plan, Problem, Status

COST_SCALE = 1000
SECONDS = 60  # minutes are counted in whole seconds
FIRST_PHASE = 0.4  # share of the time limit for finding a plan that places every job, when needed


def shift_minutes(problem: Problem) -> np.ndarray:
    return np.array(
        [(t.shift.end - t.shift.start) / 60.0 if t.shift else np.inf for t in problem.technicians]
    )


def minutes_can_bind(problem: Problem, elig: Eligibility, work: np.ndarray) -> bool:
    """Whether some technician's longest feasible jobs, as many as it may take, overrun its shift."""
    shifts = shift_minutes(problem)
    for t in np.flatnonzero(np.isfinite(shifts)):
        minutes = work[elig.feasible[:, t], t]
        k = min(int(elig.capacity[t]), minutes.size)
        if k and np.partition(minutes, minutes.size - k)[minutes.size - k :].sum() > shifts[t]:
            return True
    return False


def _start(problem: Problem, elig: Eligibility, work: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """A good first plan: jobs in order of regret (how much it costs them to lose their best technician),
    each to the cheapest technician that still has room (Martello and Toth's greedy for the GAP)."""
    n_jobs, n_tech = elig.feasible.shape
    cost = np.where(elig.feasible, elig.pair_cost, np.inf)
    tech_of_job = np.full(n_jobs, -1)
    used, load = np.zeros(n_tech), np.zeros(n_tech, dtype=int)
    waiting = [j for j in range(n_jobs) if j not in elig.reasons]
    while waiting:
        room = (used[None, :] + work[waiting] <= shifts[None, :]) & (load < elig.capacity)[None, :]
        options = np.where(room, cost[waiting], np.inf)
        ordered = np.sort(options, axis=1)
        first = ordered[:, 0]
        second = ordered[:, 1] if n_tech > 1 else np.full(len(waiting), np.inf)
        with np.errstate(invalid="ignore"):
            regret = np.where(np.isfinite(second), second - first, np.inf)

        regret[~np.isfinite(first)] = -np.inf  # nowhere left: decided last, and left out
        pick = int(np.argmax(regret))
        j = waiting.pop(pick)
        if np.isfinite(first[pick]):
            t = int(np.argmin(options[pick]))
            tech_of_job[j], used[t], load[t] = t, used[t] + work[j, t], load[t] + 1
    return tech_of_job


def solve_gap(problem: Problem, elig: Eligibility) -> Plan:
    started = time.perf_counter()
    work = work_minutes(problem, elig)
    if not minutes_can_bind(problem, elig, work):
        return solve_assign(problem, elig)
    shifts = shift_minutes(problem)
    n_jobs, n_tech = elig.feasible.shape
    open_jobs = np.ones(n_jobs, dtype=bool)
    open_jobs[list(elig.reasons)] = False
    pairs = np.nonzero(elig.feasible & open_jobs[:, None])
    deadline = started + problem.options.time_limit_s

    hint = _start(problem, elig, work, shifts)
    if np.any((hint < 0) & open_jobs):
        # The greedy start left jobs out; a complete plan, if there is one, is worth far more than any
        # saving in cost, and CP-SAT finds one much sooner when it must place every job.
        complete = _solve(
            problem,
            elig,
            pairs,
            work,
            shifts,
            hint,
            started + FIRST_PHASE * (deadline - started),
            every_job=True,
            first_only=True,
        )
        if complete is not None:
            hint = complete[0]
    found = _solve(problem, elig, pairs, work, shifts, hint, deadline, every_job=False, first_only=False)
    tech_of_job, bound, result = found if found is not None else (hint, None, Status.FEASIBLE)
    used = np.array([work[tech_of_job == t, t].sum() for t in range(n_tech)])
    return plan_from_assignment(problem, elig, tech_of_job, started, result, bound, shifts - used)


def _solve(
    problem: Problem,
    elig: Eligibility,
    pairs: tuple[np.ndarray, np.ndarray],
    work: np.ndarray,
    shifts: np.ndarray,
    hint: np.ndarray,
    deadline: float,
    every_job: bool,
    first_only: bool,
) -> tuple[np.ndarray, float | None, Status] | None:
    """CP-SAT over the qualified pairs: (technician per job, proven bound, status), None if nothing was
    found in time. With `every_job`, each job must be placed (else leaving it out costs its penalty)."""
    n_jobs, n_tech = elig.feasible.shape
    pair_job, pair_tech = pairs
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x{j}_{t}") for j, t in zip(pair_job.tolist(), pair_tech.tolist(), strict=True)]
    by_job: list[list[int]] = [[] for _ in range(n_jobs)]
    by_tech: list[list[int]] = [[] for _ in range(n_tech)]
    for p, (j, t) in enumerate(zip(pair_job.tolist(), pair_tech.tolist(), strict=True)):
        by_job[j].append(p)
        by_tech[t].append(p)
    one = model.add_exactly_one if every_job else model.add_at_most_one
    for chosen in by_job:
        if chosen:
            one(x[p] for p in chosen)
    seconds = np.ceil(work[pair_job, pair_tech] * SECONDS).astype(np.int64)
    balance = problem.options.weights.balance
    extra_terms = []
    for t, chosen in enumerate(by_tech):
        if not chosen:
            continue
        model.add(sum(x[p] for p in chosen) <= int(elig.capacity[t]))
        if np.isfinite(shifts[t]):
            model.add(sum(int(seconds[p]) * x[p] for p in chosen) <= int(np.floor(shifts[t] * SECONDS)))
        if balance > 0:
            extra_terms.append(
                _balance_term(model, [x[p] for p in chosen], problem.technicians[t].assigned_jobs)
            )
    # Leaving job j out costs its penalty: the objective is the penalties of all open jobs plus, for
    # each pair chosen, its cost minus the penalty it saves.
    gain = np.rint((elig.pair_cost[pair_job, pair_tech] - elig.drop_penalty[pair_job]) * COST_SCALE).astype(
        np.int64
    )
    open_jobs = np.zeros(n_jobs, dtype=bool)
    open_jobs[pair_job] = True
    constant = float(elig.drop_penalty[open_jobs].sum())
    balance_scale = round(balance * COST_SCALE / 2)
    model.minimize(
        sum(int(g) * v for g, v in zip(gain.tolist(), x, strict=True)) + balance_scale * sum(extra_terms)
    )
    for p, (j, t) in enumerate(zip(pair_job.tolist(), pair_tech.tolist(), strict=True)):
        model.add_hint(x[p], bool(hint[j] == t))

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.01, deadline - time.perf_counter())
    solver.parameters.num_workers = max(1, problem.options.workers)
    solver.parameters.random_seed = 0
    solver.parameters.stop_after_first_solution = first_only
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    chosen_pairs = np.array([solver.boolean_value(v) for v in x], dtype=bool)
    tech_of_job = np.full(n_jobs, -1)
    tech_of_job[pair_job[chosen_pairs]] = pair_tech[chosen_pairs]
    # A bound proven where every job had to be placed does not hold where jobs may be left out.
    bound = constant + solver.best_objective_bound / COST_SCALE if not every_job else None
    return (
        tech_of_job,
        bound,
        Status.OPTIMAL if status == cp_model.OPTIMAL and not every_job else Status.FEASIBLE,
    )


def _balance_term(model: cp_model.CpModel, chosen: list, before: int):
    """n (n - 1) + 2 n before, for n the technician's new jobs: twice the balance term's sum."""
    n = model.new_int_var(0, len(chosen), "n")
    model.add(n == sum(chosen))
    square = model.new_int_var(0, len(chosen) ** 2, "n2")
    model.add_multiplication_equality(square, [n, n])
    return square - n + 2 * before * n
