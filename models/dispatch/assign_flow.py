"""ASSIGN mode with count capacities, solved exactly as a min-cost flow.

When a job's cost and load do not depend on what else its technician does, assignment is a
transportation problem: source -> job -> technician -> sink, plus a job -> sink arc priced at the job's
drop penalty. The balance term (the k-th job of a technician costs balance * (k - 1) more) is convex in
the technician's load, so it becomes one unit arc per job slot with rising costs and the flow stays exact.
"""

from __future__ import annotations

import math
import time

import numpy as np
from ortools.graph.python import min_cost_flow

from models.dispatch.assign_day import schedule
from models.dispatch.blocks import by_rows
from models.dispatch.day_routes import finish
from models.dispatch.eligibility import Eligibility
from models.dispatch.problem import (
    COST_SCALE,
    Assignment,
    Plan,
    Problem,
    Reason,
    Status,
    Unassigned,
    balance_cost,
)

# Costs are integers in the flow: 1/1000 of a cost unit (a metre of travel at the default weight).
COMPETING_JOBS_NAMED = 5
# Instances with more qualified pairs than this start from each job's PRUNE_K cheapest technicians.
PRUNE_ABOVE_PAIRS = 1_000_000
PRUNE_K = 40


def solve_assign(problem: Problem, elig: Eligibility, prune: bool = True) -> Plan:
    """The optimal assignment, status OPTIMAL, as days a technician can work (FEASIBLE when the days
    could not keep it whole: `plan_from_assignment`). On large instances (`prune`) each job first gets
    only its PRUNE_K cheapest qualified technicians; a job then left out while it has others is given all of
    them and the flow solved again, until no such job remains. That plan is optimal over the pairs it
    kept, not proven over all of them, so its status is FEASIBLE; `benchmarks.dispatch_city` measures
    the difference (0.014% of the objective at 10,000 jobs × 3,000 technicians)."""

    started = time.perf_counter()
    candidates = elig.feasible
    if prune and int(elig.feasible.sum()) > PRUNE_ABOVE_PAIRS:
        candidates = _cheapest(elig, PRUNE_K, problem.options.workers)
    open_jobs = np.ones(elig.feasible.shape[0], dtype=bool)
    open_jobs[list(elig.reasons)] = False
    while True:
        tech_of_job = _flow(problem, elig, candidates, open_jobs)
        widen = (tech_of_job < 0) & open_jobs & (elig.feasible & ~candidates).any(axis=1)
        if not widen.any():
            # Optimal over the candidates; over all pairs only when none was pruned.
            proven = bool(np.array_equal(candidates, elig.feasible))
            status = Status.OPTIMAL if proven else Status.FEASIBLE
            return plan_from_assignment(problem, elig, tech_of_job, started, status)
        candidates = candidates.copy()
        candidates[widen] = elig.feasible[widen]


def _cheapest(elig: Eligibility, k: int, workers: int) -> np.ndarray:
    """Each job's k cheapest qualified technicians (all of them when it has fewer)."""
    k = min(k, elig.feasible.shape[1])
    keep = np.zeros_like(elig.feasible)

    def fill(rows: slice) -> None:
        cost = np.where(elig.feasible[rows], elig.pair_cost[rows], np.inf)
        np.put_along_axis(keep[rows], np.argpartition(cost, k - 1, axis=1)[:, :k], True, axis=1)
        keep[rows] &= elig.feasible[rows]

    by_rows(keep.shape[0], fill, workers)
    return keep


def _flow(problem: Problem, elig: Eligibility, candidates: np.ndarray, open_mask: np.ndarray) -> np.ndarray:
    """The technician of each job (-1: left out) in a min-cost flow over the candidate pairs."""
    n_jobs, n_tech = elig.feasible.shape
    balance = problem.options.weights.balance
    assigned_before = np.array([t.assigned_jobs for t in problem.technicians], dtype=float)

    pair_job, pair_tech = np.nonzero(candidates)
    slots = np.minimum(elig.capacity, np.bincount(pair_tech, minlength=n_tech))
    slot_tech = np.repeat(np.arange(n_tech), slots)
    slot_rank = np.arange(slot_tech.size) - np.repeat(np.cumsum(slots) - slots, slots)
    slot_cost = balance * (assigned_before[slot_tech] + slot_rank)

    source, sink = 0, n_jobs + n_tech + 1
    job_node, tech_node = 1 + np.arange(n_jobs), 1 + n_jobs + np.arange(n_tech)
    open_jobs = np.flatnonzero(open_mask)
    tails = np.concatenate(
        [np.full(open_jobs.size, source), job_node[pair_job], job_node[open_jobs], tech_node[slot_tech]]
    )
    heads = np.concatenate(
        [
            job_node[open_jobs],
            tech_node[pair_tech],
            np.full(open_jobs.size, sink),
            np.full(slot_tech.size, sink),
        ]
    )
    costs = np.concatenate(
        [
            np.zeros(open_jobs.size),
            elig.pair_cost[pair_job, pair_tech],
            elig.drop_penalty[open_jobs],
            slot_cost,
        ]
    )
    flow = min_cost_flow.SimpleMinCostFlow()
    arcs = flow.add_arcs_with_capacity_and_unit_cost(
        tails.astype(np.int32),
        heads.astype(np.int32),
        np.ones(tails.size, dtype=np.int64),
        np.rint(costs * COST_SCALE).astype(np.int64),
    )
    flow.set_nodes_supplies(
        np.array([source, sink], dtype=np.int32), np.array([open_jobs.size, -open_jobs.size])
    )
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed with status {status}")
    chosen = flow.flows(arcs[open_jobs.size : open_jobs.size + pair_job.size]) > 0
    tech_of_job = np.full(n_jobs, -1)
    tech_of_job[pair_job[chosen]] = pair_tech[chosen]
    return tech_of_job


def plan_from_assignment(
    problem: Problem,
    elig: Eligibility,
    tech_of_job: np.ndarray,
    started: float,
    status: Status = Status.OPTIMAL,
    bound: float | None = None,
    minutes_left: np.ndarray | None = None,
) -> Plan:
    """The plan of an assignment (-1: left out) as days a technician can work (assign_day.py), with a
    reason for every job left out. `minutes_left` (per technician) and the jobs' work minutes also decide
    who still had room, when shift minutes count. When the days could not keep the assignment as it was,
    the plan is FEASIBLE, and the assignment's objective (when optimal) or `bound` bounds it."""
    objective = objective_of(problem, elig, tech_of_job)
    days = schedule(problem, elig, tech_of_job, minutes_left)
    if not np.array_equal(days.tech_of_job, tech_of_job):
        # Sequencing only adds constraints: what bounded the assignment bounds the days too.
        bound = objective if status is Status.OPTIMAL else bound
        status = Status.FEASIBLE
        objective = objective_of(problem, elig, days.tech_of_job)
    tech_of_job = days.tech_of_job
    techs = problem.technicians
    assignments = [
        Assignment(
            problem.jobs[j].job_id,
            techs[t].technician_id,
            sequence,
            arrival if math.isfinite(arrival) else None,
            km,
        )
        for t, route in days.routes.items()
        for sequence, (j, arrival, km) in enumerate(
            zip(route, days.schedules[t].arrivals, days.leg_km.get(t, []), strict=True)
        )
    ]
    assignments.sort(key=lambda a: (a.technician_id, a.sequence))

    load = np.bincount(tech_of_job[tech_of_job >= 0], minlength=len(techs))
    unassigned = [elig.reasons[j] for j in sorted(elig.reasons)]
    dropped = [j for j in range(len(problem.jobs)) if tech_of_job[j] < 0 and j not in elig.reasons]
    unassigned += [
        days.left_out[j]
        if j in days.left_out
        else _why_dropped(problem, elig, j, tech_of_job, load, days.minutes_left)
        for j in dropped
    ]
    plan = Plan(
        assignments=assignments,
        unassigned=unassigned,
        status=status,
        objective=objective,
        solve_ms=(time.perf_counter() - started) * 1000.0,
        travel_km=days.travel_km,
        bound=objective if status is Status.OPTIMAL else bound,
    )
    # The days were sequenced by the same schedule: this reads them whole and loses no job.
    return finish(problem, elig, plan)


def objective_of(problem: Problem, elig: Eligibility, tech_of_job: np.ndarray) -> float:
    """ASSIGN's objective: each job's travel from its technician's location and tier term, the balance
    term, and the drop penalties of the jobs left out."""
    done = np.flatnonzero(tech_of_job >= 0)
    load = np.bincount(tech_of_job[done], minlength=len(problem.technicians))
    before = np.array([t.assigned_jobs for t in problem.technicians], dtype=float)
    return (
        float(elig.pair_cost[done, tech_of_job[done]].sum())
        + balance_cost(problem.options.weights.balance, load, before)
        + float(elig.drop_penalty[tech_of_job < 0].sum())
    )


def work_minutes(problem: Problem, elig: Eligibility) -> np.ndarray:
    """Jobs × technicians: travel from the technician's location plus time on site."""
    return elig.minutes + np.array([j.duration_minutes for j in problem.jobs], dtype=float)[:, None]


def _why_dropped(
    problem: Problem,
    elig: Eligibility,
    j: int,
    tech_of_job: np.ndarray,
    load: np.ndarray,
    minutes_left: np.ndarray | None,
) -> Unassigned:
    job, techs = problem.jobs[j], problem.technicians
    candidates = np.flatnonzero(elig.feasible[j])
    free = candidates[load[candidates] < elig.capacity[candidates]]
    if minutes_left is not None:
        free = free[minutes_left[free] >= elig.minutes[j, free] + job.duration_minutes]

    if free.size:
        balance = problem.options.weights.balance
        marginal = elig.pair_cost[j, free] + balance * (
            np.array([techs[t].assigned_jobs for t in free]) + load[free]
        )
        best = free[np.argmin(marginal)]
        return Unassigned(
            job.job_id,
            Reason.TOO_COSTLY,
            f"cheapest qualified technician {techs[best].technician_id!r} would cost {marginal.min():.1f}, "
            f"more than the drop penalty {elig.drop_penalty[j]:.1f}",
        )
    competing = np.flatnonzero(np.isin(tech_of_job, candidates))
    competing = competing[np.argsort(-elig.drop_penalty[competing], kind="stable")][:COMPETING_JOBS_NAMED]
    taken = (
        f"they took jobs of higher value, e.g. {', '.join(problem.jobs[c].job_id for c in competing)}"
        if competing.size
        else "they had no room left before this plan (max_jobs or shift minutes)"
    )
    return Unassigned(
        job.job_id,
        Reason.CAPACITY_EXHAUSTED,
        f"all {candidates.size} qualified technicians are full; {taken}",
    )
