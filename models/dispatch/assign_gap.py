"""ASSIGN mode when shift minutes count: the generalized assignment problem.

Each job takes its travel from the technician's location plus its time on site out of the
technician's shift, so what a technician can still take depends on what it already has: no longer a
transportation problem. When the minutes cannot bind (no technician could fill its shift even with its
longest feasible jobs) the exact min-cost flow still answers. Otherwise:
1. the linear relaxation gives a proven lower bound, prices for the technicians' time, and a plan
   that places all but a few jobs whole; Martello and Toth's regret greedy at those prices places
   the rest where they fit;
2. small instances go to CP-SAT whole, which usually proves the optimum; larger ones are improved
   by re-solving groups of competing technicians with CP-SAT until the time limit.
The plan's `bound` is the better of the relaxation's and CP-SAT's.
"""

from __future__ import annotations

import math
import time

import numpy as np

from models.dispatch.assign_flow import plan_from_assignment, solve_assign, work_minutes
from models.dispatch.eligibility import Eligibility
from models.dispatch.gap_bound import relax
from models.dispatch.gap_instance import SECONDS, UNLIMITED, GapInstance
from models.dispatch.gap_search import neighbourhood_search, regret_start, solve_group
from models.dispatch.problem import Plan, Problem, Status

RELAXATION_SHARE = 0.4  # of the time limit, at most, for the linear relaxation
WHOLE_MODEL_PAIRS = 2000  # instances this small go to CP-SAT whole
# Sequencing 10,000 jobs into days took 0.37 s of a 5 s limit (benchmarks.dispatch_city).
SEQUENCING_SHARE = 0.1


def shift_minutes(problem: Problem) -> np.ndarray:
    """Each technician's working minutes: its shift less its breaks."""
    return np.array(
        [
            (t.shift.end - t.shift.start) / 60.0 - sum(b.duration_minutes for b in t.breaks)
            if t.shift
            else np.inf
            for t in problem.technicians
        ]
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


def gap_instance(problem: Problem, elig: Eligibility, work: np.ndarray) -> GapInstance:
    open_jobs = np.ones(len(problem.jobs), dtype=bool)
    open_jobs[list(elig.reasons)] = False
    shifts = shift_minutes(problem)
    limited = np.isfinite(shifts)
    shift = np.full(shifts.size, UNLIMITED, dtype=np.int64)
    shift[limited] = np.floor(shifts[limited] * SECONDS)
    n_jobs = len(problem.jobs)
    return GapInstance(
        cost=np.where(elig.feasible & open_jobs[:, None], elig.pair_cost, np.inf),
        seconds=np.ceil(work * SECONDS).astype(np.int64),
        shift=shift,
        count=np.minimum(elig.capacity, n_jobs).astype(np.int64),
        before=np.array([t.assigned_jobs for t in problem.technicians], dtype=np.int64),
        penalty=elig.drop_penalty.astype(float),
        balance=problem.options.weights.balance,
    )


def solve_gap(problem: Problem, elig: Eligibility) -> Plan:
    started = time.perf_counter()
    work = work_minutes(problem, elig)
    if not minutes_can_bind(problem, elig, work):
        return solve_assign(problem, elig)
    # The search leaves a share of the limit for sequencing its assignment into days (assign_day.py).
    deadline = started + (1 - SEQUENCING_SHARE) * problem.options.time_limit_s
    workers = problem.options.workers
    instance = gap_instance(problem, elig, work)

    relaxation = relax(instance, RELAXATION_SHARE * (deadline - started))
    if relaxation is None:  # too large to relax in time: a greedy start, and no bound
        priced, bound = instance.cost, -math.inf
        tech_of_job = regret_start(instance, priced)
    else:
        priced, bound = relaxation.priced(instance), relaxation.bound
        placed = np.where(relaxation.share.max(axis=1) > 1 - 1e-6, relaxation.share.argmax(axis=1), -1)
        tech_of_job = regret_start(instance, priced, placed)
    proven = False

    if int(instance.allowed.sum()) <= WHOLE_MODEL_PAIRS:
        everyone = np.arange(instance.cost.shape[1])
        jobs = np.flatnonzero(instance.allowed.any(axis=1))
        whole = solve_group(instance, tech_of_job, everyone, jobs, deadline - time.perf_counter(), workers)
        if whole is not None:
            tech_of_job, proven = whole.tech_of_job, whole.proven
            bound = max(bound, whole.bound if whole.bound is not None else -math.inf)
    else:
        tech_of_job = neighbourhood_search(instance, priced, tech_of_job, deadline, workers)

    objective = instance.objective(tech_of_job)
    proven = proven or bound >= objective - 1e-6 * max(1.0, abs(objective))
    done = np.flatnonzero(tech_of_job >= 0)
    used = np.bincount(tech_of_job[done], work[done, tech_of_job[done]], minlength=instance.cost.shape[1])
    return plan_from_assignment(
        problem,
        elig,
        tech_of_job,
        started,
        Status.OPTIMAL if proven else Status.FEASIBLE,
        min(bound, objective),
        shift_minutes(problem) - used,
    )
