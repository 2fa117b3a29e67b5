"""What every ROUTE search shares: the plan's time frame, the jobs no route took, the objective the
portfolio compares plans on, whichever search made them, and a re-plan's starting point."""

from __future__ import annotations

import math
from dataclasses import replace

from models.dispatch import eligibility
from models.dispatch.assign_day import Sequencer
from models.dispatch.eligibility import Eligibility
from models.dispatch.problem import Plan, Problem, Reason, Unassigned

DAY_SECONDS = 24 * 3600  # the shortest horizon: times count whole seconds from the plan's origin


def time_frame(problem: Problem) -> tuple[float, int]:
    """(the plan's origin in Unix seconds, its horizon in seconds)."""
    windows = [w for w in [j.window for j in problem.jobs] + [t.shift for t in problem.technicians] if w]
    if not windows:
        return 0.0, DAY_SECONDS
    origin = min(w.start for w in windows)
    return origin, max(DAY_SECONDS, math.ceil(max(w.end for w in windows) - origin) + 1)


def leftover(problem: Problem, elig: Eligibility, served: set[int]) -> list[Unassigned]:
    """Eligibility's reasons, then every other job no route took."""
    unassigned = [elig.reasons[j] for j in sorted(elig.reasons)]
    for j, job in enumerate(problem.jobs):
        if j in served or j in elig.reasons:
            continue
        qualified = int(elig.feasible[j].sum())
        unassigned.append(
            Unassigned(
                job.job_id,
                Reason.CAPACITY_EXHAUSTED,
                f"does not fit the day of any of its {qualified} qualified technicians "
                "(time, load or job count) beside jobs of higher value",
            )
        )
    return unassigned


def objective(problem: Problem, elig: Eligibility, plan: Plan) -> float:
    """Shifu's ROUTE objective of a plan, whichever search made it: travel, the drop penalties of the jobs
    left out, the tier and reassignment terms of the jobs taken, and the balance term as the spread
    between the busiest and the idlest technician's job count (the OR-Tools model prices the busiest's
    count, a global span whose start is zero for everyone, which pulls the same way)."""
    w = problem.options.weights
    index = {job.job_id: j for j, job in enumerate(problem.jobs)}
    column = {t.technician_id: i for i, t in enumerate(problem.technicians)}
    dropped = sum(float(elig.drop_penalty[index[u.job_id]]) for u in plan.unassigned)
    entries = sum(float(elig.entry_cost[index[a.job_id], column[a.technician_id]]) for a in plan.assignments)
    counts = {t.technician_id: 0 for t in problem.technicians}
    for a in plan.assignments:
        counts[a.technician_id] += 1
    spread = max(counts.values()) - min(counts.values()) if counts else 0
    return w.travel_per_km * plan.travel_km + dropped + entries + w.balance * spread


def with_objective(problem: Problem, elig: Eligibility, plan: Plan) -> Plan:
    return replace(plan, objective=objective(problem, elig, plan))


def replanning(problem: Problem) -> bool:
    """Whether the request replaces a plan: some job names its current technician."""
    return any(j.current_technician_id is not None for j in problem.jobs)


def current_days(problem: Problem, elig: Eligibility) -> list[list[int]]:
    """Each technician's jobs of the plan being replaced (its current_technician_id's), sequenced by
    cheapest feasible insertion into a day back home, within max_jobs and the vehicle: where a re-plan's
    search starts, so that it moves a job only when that pays for its reassignment cost."""
    columns = eligibility.columns_of(problem.technicians)
    held: dict[int, list[int]] = {}
    for j, job in enumerate(problem.jobs):
        allowed = [t for t in columns.get(job.current_technician_id or "", []) if elig.feasible[j, t]]
        if allowed:
            held.setdefault(min(allowed, key=lambda t: elig.pair_cost[j, t]), []).append(j)
    seq = Sequencer(problem, elig, home=True)
    days: list[list[int]] = [[] for _ in problem.technicians]
    for t, jobs in held.items():
        route, _, _ = seq.day(t, jobs)
        tech, load = problem.technicians[t], 0.0
        for j in route[: int(elig.capacity[t])]:
            load += problem.jobs[j].demand
            if not tech.vehicle_capacity or load <= tech.vehicle_capacity + 1e-9:
                days[t].append(j)
    return days
