"""Appointment windows to offer a customer: which of the asked windows a new job fits into while every
job of the current plan keeps its technician, its window and the break rules.

An offer is a promise, so it is found the way AssignJobs would confirm it: each technician's planned
jobs are sequenced as ASSIGN sequences a day (cheapest feasible insertion, the most valuable first;
in ROUTE mode the day ends back home), and the new job, given the window, is inserted last, into the
day of the cheapest qualified technician with room whose day it fits (the same order and the same
MOVE_CANDIDATES cheapest that AssignJobs' sequencing tries). A window is refused when no such day
has room; benchmarks/offer_slots.py measures how often an exact search of every order finds room
anyway.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from models.dispatch import eligibility, shifts
from models.dispatch import problem as dp
from models.dispatch.assign_day import MOVE_CANDIDATES, Sequencer
from models.dispatch.assign_gap import shift_minutes
from models.dispatch.day_schedule import Schedule
from models.dispatch.eligibility import Eligibility
from models.dispatch.problem import Capacity, Job, Mode, Problem, Window
from models.dispatch.travel import cut, end_nodes, legs, locations
from models.errors import FieldError

MAX_WINDOWS = 50


@dataclass(frozen=True)
class SlotOffer:
    window: Window
    available: bool
    technician_id: str | None  # who would take it, when available (the request's id)
    extra_travel_km: float
    arrival: float | None  # Unix seconds, when available
    detail: str


def validate(job: Job, windows: Sequence[Window], plan: Problem) -> None:
    """Raises FieldError naming the first invalid field. The request's matrices run over the
    technicians, the plan's jobs, the new job, then the end locations: (technicians + jobs + 1 + end
    locations)^2 values."""
    dp.validate(replace(plan, options=replace(plan.options, distance_km=None, duration_min=None)))
    dp.validate_options(plan.options, dp.n_locations(plan) + 1)
    dp.validate_job(job, "job")
    if not windows:
        raise FieldError("windows", "ask for at least one window")
    if len(windows) > MAX_WINDOWS:
        raise FieldError("windows", f"at most {MAX_WINDOWS} windows, got {len(windows)}")
    for i, window in enumerate(windows):
        dp.validate_window(window, f"windows[{i}]")
    for i, job_in_plan in enumerate(plan.jobs):
        if job_in_plan.pinned_technician_id is None and job_in_plan.current_technician_id is None:
            raise FieldError(
                f"jobs[{i}]",
                "a planned job needs its technician: pinned_technician_id or current_technician_id",
            )
        if job_in_plan.job_id == job.job_id:
            raise FieldError("job.job_id", f"is already in the plan (jobs[{i}])")


def _with_trials(plan: Problem, trials: tuple[Job, ...]) -> Problem:
    """The plan and a copy of the new job per window; the matrices' row and column of the new job
    (after the plan's jobs, before the end locations) repeated for every copy."""
    new = len(plan.technicians) + len(plan.jobs)
    places = dp.n_locations(plan) + 1
    nodes = np.concatenate([np.arange(new), np.full(len(trials), new), np.arange(new + 1, places)])
    return replace(plan, jobs=plan.jobs + trials, options=cut(plan.options, places, nodes))


@dataclass(frozen=True)
class _Day:
    route: list[int]  # job indices in order
    schedule: Schedule
    whole: bool  # every planned job of the technician fits; only then may it be offered


def offer(job: Job, windows: Sequence[Window], plan: Problem) -> list[SlotOffer]:
    """One offer per window, in order. `plan`: the planned jobs (each kept with its technician, as if
    pinned) and the technicians, with the options whose day model the job must fit."""
    planned = tuple(
        replace(j, pinned_technician_id=j.pinned_technician_id or j.current_technician_id) for j in plan.jobs
    )
    trials = tuple(
        replace(job, job_id=f"{job.job_id} in window {k + 1}", window=w, pinned_technician_id=None,
                current_technician_id=None)
        for k, w in enumerate(windows)
    )  # fmt: skip
    problem = shifts.one_each(_with_trials(replace(plan, jobs=planned), trials))
    elig = eligibility.compute(problem)
    seq = Sequencer(problem, elig, home=problem.options.mode is Mode.ROUTE)
    days = _days(problem, elig, seq, len(planned))
    load = np.zeros(len(problem.technicians), dtype=np.int64)
    for t, day in days.items():
        load[t] = len(day.route)
    return [_offer(problem, elig, seq, days, load, len(planned) + k, w) for k, w in enumerate(windows)]


def _days(problem: Problem, elig: Eligibility, seq: Sequencer, n_planned: int) -> dict[int, _Day]:
    """Each technician's planned jobs sequenced into its day."""
    mine: dict[int, list[int]] = {}
    for j in range(n_planned):
        allowed = np.flatnonzero(elig.feasible[j])
        if allowed.size:  # pinned: its technician, the cheapest of its shifts, as AssignJobs' flow picks
            mine.setdefault(int(allowed[np.argmin(elig.pair_cost[j, allowed])]), []).append(j)
    days = {t: _Day([], seq.empty(t), True) for t in range(len(problem.technicians))}
    for t, jobs in mine.items():
        listed = _as_listed(seq, t, jobs) if seq.timing.home else None
        if listed is not None:
            days[t] = _Day(jobs, listed, True)
            continue
        route, schedule, displaced = seq.day(t, jobs)
        days[t] = _Day(route, schedule, not displaced)
    return days


def _as_listed(seq: Sequencer, t: int, jobs: list[int]) -> Schedule | None:
    """ROUTE mode: the technician's jobs in the order the request lists them (a plan sent back as it
    came, in its sequence), when that day can be worked; ROUTE's searches are not bound to insertion."""
    _, seconds = seq.matrix(t, jobs)
    return seq.timing.schedule(t, jobs, seconds, list(range(1, len(jobs) + 1)))


def _offer(
    problem: Problem,
    elig: Eligibility,
    seq: Sequencer,
    days: dict[int, _Day],
    load: np.ndarray,
    j: int,
    window: Window,
) -> SlotOffer:
    if j in elig.reasons:
        return SlotOffer(window, False, None, 0.0, None, elig.reasons[j].detail)
    qualified = np.flatnonzero(elig.feasible[j])
    room = qualified[load[qualified] < elig.capacity[qualified]]
    room = room[[_carries(problem, elig, days[int(t)], j, int(t)) for t in room]] if room.size else room
    whole = room[[days[int(t)].whole for t in room]] if room.size else room
    held = np.array([problem.technicians[t].assigned_jobs for t in whole], dtype=float)
    marginal = elig.pair_cost[j, whole] + problem.options.weights.balance * (held + load[whole])
    for k in np.argsort(marginal, kind="stable")[:MOVE_CANDIDATES].tolist():
        t = int(whole[k])
        found = seq.fit(t, days[t].route, j)
        if found is None:
            continue
        name = problem.technicians[t].person
        if marginal[k] >= elig.drop_penalty[j]:
            detail = (
                f"the cheapest technician whose day it fits, {name!r}, would cost {marginal[k]:.1f}, "
                f"more than the job's drop penalty {elig.drop_penalty[j]:.1f}"
            )
            return SlotOffer(window, False, None, 0.0, None, detail)
        route, schedule = found
        at = route.index(j)
        extra = _km(problem, t, route) - _km(problem, t, days[t].route)
        arrival = schedule.arrivals[at]
        return SlotOffer(
            window,
            True,
            name,
            extra,
            arrival if math.isfinite(arrival) else None,
            f"fits {name}'s day between {_neighbours(problem, route, at)}",
        )
    return SlotOffer(window, False, None, 0.0, None, _why_not(problem, qualified, room, whole))


def _neighbours(problem: Problem, route: list[int], at: int) -> str:
    before = problem.jobs[route[at - 1]].job_id if at else "the start of the day"
    after = problem.jobs[route[at + 1]].job_id if at + 1 < len(route) else "the end of the day"
    return f"{before} and {after}"


def _carries(problem: Problem, elig: Eligibility, day: _Day, j: int, t: int) -> bool:
    """Room beside the technician's planned jobs: the vehicle's load (ROUTE) and shift minutes (ASSIGN
    when they count), as AssignJobs checks them."""
    tech, jobs = problem.technicians[t], problem.jobs
    load = sum(jobs[k].demand for k in day.route) + jobs[j].demand
    if problem.options.mode is Mode.ROUTE and tech.vehicle_capacity and load > tech.vehicle_capacity + 1e-9:
        return False
    if problem.options.mode is Mode.ASSIGN and problem.options.capacity is Capacity.SHIFT_MINUTES:
        work = sum(elig.minutes[k, t] + jobs[k].duration_minutes for k in [*day.route, j])
        return bool(work <= shift_minutes(problem)[t] + 1e-9)
    return True


def _km(problem: Problem, t: int, route: list[int]) -> float:
    n_tech = len(problem.technicians)
    home = [end_nodes(problem)[t]] if problem.options.mode is Mode.ROUTE else []
    nodes = np.array([t, *(n_tech + j for j in route), *home], dtype=np.int64)
    if nodes.size < 2:
        return 0.0
    km, _ = legs(problem, locations(problem), nodes[:-1], nodes[1:])
    return float(km.sum())


def _why_not(problem: Problem, qualified: np.ndarray, room: np.ndarray, whole: np.ndarray) -> str:
    if not room.size:
        return (
            f"all {qualified.size} technicians who could do it in this window are full "
            "(max_jobs, load or shift minutes)"
        )
    tried = min(whole.size, MOVE_CANDIDATES)
    text = f"no day of the {tried} cheapest qualified technicians with room has time for it in this window"
    if whole.size < room.size:
        text += f" ({room.size - whole.size} whose planned jobs do not all fit their day were not offered)"
    return text + " (travel, the planned jobs' windows, breaks and the shift)"
