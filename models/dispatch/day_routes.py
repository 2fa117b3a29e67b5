"""Every plan's days read whole, the last step of every solver: each technician's jobs in the order the
solver chose are scheduled by models/dispatch/day_schedule.py (arrivals, breaks, the day's start and
end), which makes the answer's times mean the same whatever made the plan.

A search that knows breaks only as intervals of its time dimension (OR-Tools) may place one in the
middle of a drive, which Shifu's rule does not allow: such a day loses its least valuable jobs until
its schedule holds, and they are answered as left out, with the reason.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from models.dispatch import day_schedule
from models.dispatch.day_schedule import Schedule, Stop
from models.dispatch.eligibility import Eligibility
from models.dispatch.problem import (
    Assignment,
    Job,
    Mode,
    Plan,
    Problem,
    Reason,
    Route,
    ScheduledBreak,
    Unassigned,
)
from models.dispatch.travel import end_node, legs, locations


def orders_of(problem: Problem, plan: Plan) -> dict[int, list[int]]:
    """Each technician's jobs in the plan's order, as indices into the problem."""
    job_index = {job.job_id: j for j, job in enumerate(problem.jobs)}
    tech_index = {tech.technician_id: t for t, tech in enumerate(problem.technicians)}
    orders: dict[int, list[int]] = {}
    for a in sorted(plan.assignments, key=lambda a: (tech_index[a.technician_id], a.sequence)):
        orders.setdefault(tech_index[a.technician_id], []).append(job_index[a.job_id])
    return orders


def finish(problem: Problem, elig: Eligibility, plan: Plan) -> Plan:
    """The plan with its arrivals from the day schedule, its routes, and its reassignments counted. A
    day that had to lose jobs changes the plan's objective: ROUTE's callers price it again."""
    jobs, techs = problem.jobs, problem.technicians
    home = problem.options.mode is Mode.ROUTE
    orders = orders_of(problem, plan)
    held = {job.job_id: job.current_technician_id is not None for job in jobs}
    points = locations(problem)
    assignments: list[Assignment] = []
    routes: list[Route] = []
    dropped: list[Unassigned] = []
    travel_km = 0.0
    for t, tech in enumerate(techs):
        order = orders.get(t, [])
        if not order and not tech.breaks:
            continue
        order, schedule, km, lost = _workable(problem, elig, points, t, order, home)
        dropped += lost
        travel_km += float(km.sum())
        for sequence, (j, arrival) in enumerate(zip(order, schedule.arrivals, strict=True)):
            current = jobs[j].current_technician_id
            assignments.append(
                Assignment(
                    jobs[j].job_id,
                    tech.technician_id,
                    sequence,
                    arrival if math.isfinite(arrival) else None,
                    float(km[sequence]),
                    reassigned=current is not None and current != tech.person,
                )
            )
        routes.append(_route(problem, points, t, order, schedule, km))
    unassigned = [*plan.unassigned, *dropped]
    answered = replace(
        plan,
        assignments=assignments,
        unassigned=unassigned,
        travel_km=travel_km if assignments or routes else plan.travel_km,
        routes=tuple(routes),
        reassigned=sum(a.reassigned for a in assignments) + sum(held[u.job_id] for u in unassigned),
    )
    return answered


def _workable(
    problem: Problem, elig: Eligibility, points: np.ndarray, t: int, order: list[int], home: bool
) -> tuple[list[int], Schedule, np.ndarray, list[Unassigned]]:
    """(the order less the jobs it had to lose, its schedule, each leg's km, the jobs lost)."""
    lost: list[Unassigned] = []
    while True:
        found = schedule_of(problem, points, t, order, home)
        if found is not None:
            return order, found[0], found[1], lost
        # The least valuable job whose removal lets the day hold, else the least valuable of all.
        by_value = sorted(order, key=lambda j: (elig.drop_penalty[j], j))
        out = next(
            (j for j in by_value if schedule_of(problem, points, t, [k for k in order if k != j], home)),
            by_value[0],
        )
        order = [k for k in order if k != out]
        name = problem.technicians[t].technician_id
        lost.append(
            Unassigned(
                problem.jobs[out].job_id,
                Reason.CAPACITY_EXHAUSTED,
                f"the search put it into {name!r}'s day, which then had no room for its breaks "
                "between jobs; left out rather than break a rule",
            )
        )


def schedule_of(
    problem: Problem, points: np.ndarray, t: int, order: list[int], home: bool
) -> tuple[Schedule, np.ndarray] | None:
    """(the earliest schedule, each stop's km from the previous place; in ROUTE mode the way home, or
    to the end location, last) of technician t doing `order`, or None when that day cannot be worked."""
    tech, n_tech = problem.technicians[t], len(problem.technicians)
    end = [end_node(problem, t)] if home and order else []  # a day without jobs drives nothing
    nodes = np.array([t, *(n_tech + j for j in order), *end], dtype=np.int64)
    km, minutes = legs(problem, points, nodes[:-1], nodes[1:]) if nodes.size > 1 else (np.zeros(0),) * 2
    seconds = 60.0 * minutes
    stops = [_stop(problem.jobs[j], float(seconds[s])) for s, j in enumerate(order)]
    home_s = float(seconds[len(order)]) if home and order else (0.0 if home else None)
    found = day_schedule.earliest(day_schedule.shift_bounds(tech), day_schedule.pauses(tech), stops, home_s)
    return None if found is None else (found, km)


def _stop(job: Job, travel_s: float) -> Stop:
    early = job.window.start if job.window is not None else -math.inf
    return Stop(travel_s, early, job.latest_start(), 60.0 * job.duration_minutes)


def _route(
    problem: Problem, points: np.ndarray, t: int, order: list[int], schedule: Schedule, km: np.ndarray
) -> Route:
    tech = problem.technicians[t]
    pauses = day_schedule.pauses(tech)
    first = schedule.arrivals[0] if schedule.arrivals else math.inf
    if tech.shift is not None:
        start: float | None = tech.shift.start
    elif math.isfinite(first):
        _, minutes = legs(problem, points, np.array([t]), np.array([len(problem.technicians) + order[0]]))
        start = first - 60.0 * float(minutes[0])
    else:
        start = min(schedule.breaks, default=None)
    return Route(
        technician_id=tech.technician_id,
        shift=tech.shift,
        job_ids=tuple(problem.jobs[j].job_id for j in order),
        breaks=tuple(
            ScheduledBreak(at, pause.seconds / 60.0)
            for at, pause in zip(schedule.breaks, pauses, strict=True)
        ),
        start=start,
        end=schedule.end if math.isfinite(schedule.end) else None,
        travel_km=float(km.sum()),
        work_minutes=float(sum(problem.jobs[j].duration_minutes for j in order)),
        wait_minutes=schedule.wait_s / 60.0,
    )
