"""A running day to re-plan, as a dispatcher's system would send it: the morning's plan played until a
moment, then the technicians where they are and free when their current job ends, the jobs not yet
started (each with the technician holding it), and new urgent jobs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from models.dispatch import problem as dp
from models.dispatch.problem import n_locations
from models.dispatch.travel import end_nodes, travel


@dataclass(frozen=True)
class Moves:
    remaining: int  # jobs of the first plan not started at the re-plan
    moved: int  # of those, placed with another technician
    dropped: int  # of those, left out
    placed: int  # jobs the re-plan places (new ones included)
    travel_km: float


def running_day(
    problem: dp.Problem, plan: dp.Plan, at: float, urgent: int, seed: int, keep_current: bool = True
) -> dp.Problem:
    """The day of `problem`, planned by `plan`, re-planned at `at` (Unix seconds) with `urgent` new jobs
    (priority 3, windows opening within the hour after `at`). Jobs that started before `at` are done or
    under way: their technician is at that job's place, free when it ends, and goes home at the end of
    the day (end_location). With `keep_current`, every job the plan had placed names its technician as
    current."""
    jobs = {j.job_id: j for j in problem.jobs}
    started: dict[str, list[dp.Assignment]] = {}
    holder: dict[str, str] = {}
    for a in plan.assignments:
        if a.arrival is not None and a.arrival < at:
            started.setdefault(a.technician_id, []).append(a)
        else:
            holder[a.job_id] = a.technician_id
    techs = []
    for tech in problem.technicians:
        mine = sorted(started.get(tech.technician_id, []), key=lambda a: a.arrival or 0.0)
        location, free = tech.location, at
        if mine:
            last = jobs[mine[-1].job_id]
            location = last.location
            free = max(at, (mine[-1].arrival or at) + 60.0 * last.duration_minutes)
        shift = tech.shift
        if shift is not None:
            shift = dp.Window(min(max(shift.start, free), shift.end), shift.end)
        techs.append(
            dataclasses.replace(
                tech,
                location=location,
                end_location=(tech.end_location or tech.location) if mine else tech.end_location,
                shift=shift,
                assigned_jobs=tech.assigned_jobs + len(mine),
                breaks=tuple(b for b in tech.breaks if b.window.end >= free),  # the ones still to take
            )
        )
    done = {a.job_id for runs in started.values() for a in runs}
    open_jobs = [
        dataclasses.replace(j, current_technician_id=holder.get(j.job_id) if keep_current else None)
        for j in problem.jobs
        if j.job_id not in done and (j.window is None or j.latest_start() > at)
    ]
    return dataclasses.replace(
        problem,
        jobs=tuple(open_jobs) + _urgent(problem, at, urgent, seed),
        technicians=tuple(techs),
        options=dataclasses.replace(problem.options, distance_km=None, duration_min=None),
    )


def _urgent(problem: dp.Problem, at: float, n: int, seed: int) -> tuple[dp.Job, ...]:
    rng = np.random.default_rng(seed)
    lat = np.array([j.location.lat for j in problem.jobs])
    lng = np.array([j.location.lng for j in problem.jobs])
    skills = sorted({s for t in problem.technicians for s in t.skills})
    urgent = []
    for k in range(n):
        opens = at + float(rng.uniform(0, 3600))
        urgent.append(
            dp.Job(
                job_id=f"urgent{k}",
                location=dp.GeoPoint(
                    float(rng.uniform(lat.min(), lat.max())), float(rng.uniform(lng.min(), lng.max()))
                ),
                required_skills=frozenset({str(rng.choice(skills))}),
                duration_minutes=float(rng.choice([30, 45, 60])),
                window=dp.Window(opens, opens + 2 * 3600),
                priority=3,
            )
        )
    return tuple(urgent)


def moves(replan: dp.Problem, plan: dp.Plan, first: dp.Plan) -> Moves:
    """How `plan` (of the running day `replan`) changed `first`'s placement of the jobs not started."""
    before = {a.job_id: a.technician_id for a in first.assignments}
    after = {a.job_id: a.technician_id for a in plan.assignments}
    remaining = [j.job_id for j in replan.jobs if j.job_id in before]
    return Moves(
        remaining=len(remaining),
        moved=sum(1 for j in remaining if j in after and after[j] != before[j]),
        dropped=sum(1 for j in remaining if j not in after),
        placed=len(plan.assignments),
        travel_km=plan.travel_km,
    )


def kept_km(replan: dp.Problem, first: dp.Plan) -> float:
    """The kilometres of `first`'s routes for the jobs of `replan` not started, in `first`'s order, each
    from where its technician is now to where its day ends: what keeping the plan unchanged would
    drive, before any new job."""
    index = {j.job_id: k for k, j in enumerate(replan.jobs)}
    column = {t.technician_id: k for k, t in enumerate(replan.technicians)}
    n_tech = len(replan.technicians)
    nodes = np.arange(n_locations(replan))
    km, _ = travel(replan, nodes, nodes)
    ends = end_nodes(replan)
    total = 0.0
    for route in first.routes:
        stops = [n_tech + index[j] for j in route.job_ids if j in index]
        if stops:
            t = column[route.technician_id]
            path = [t, *stops, ends[t]]
            total += float(km[path[:-1], path[1:]].sum())
    return total
