"""Which technician may take which job, the cost of each pair, and why a job has nobody.

The hard constraints that concern one job and one technician alone are checked here, before any solver
runs, in a fixed order (pin, skills, vehicle capacity, radius, shift); a job whose candidates run out at
a stage gets that stage's reason. Constraints between jobs (max_jobs, loads and travel along a route)
are the solvers' business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from models.dispatch import day_schedule
from models.dispatch.blocks import by_rows
from models.dispatch.problem import TOP_TIER, Problem, Reason, Technician, Unassigned
from models.dispatch.travel import technicians_to_jobs

# Keeping a pinned job with its technician outweighs any travel or balance consideration.
PINNED_DROP_PENALTY = 1e7


@dataclass(frozen=True)
class Eligibility:
    """Arrays are jobs × technicians."""

    feasible: np.ndarray
    km: np.ndarray
    minutes: np.ndarray
    pair_cost: np.ndarray  # travel, tier and reassignment terms of giving the job to the technician
    entry_cost: np.ndarray  # the same without travel: what entering the job costs the technician
    drop_penalty: np.ndarray  # per job
    capacity: np.ndarray  # per technician: jobs it may still take
    reasons: dict[int, Unassigned]  # job index -> why nobody may take it
    # The pairs a pin and the radius allow: what a router that models skills, loads and time itself
    # (route_hgs) must still bar.
    placeable: np.ndarray


def earliest_start(window_start: np.ndarray, shift_start: np.ndarray, minutes: np.ndarray) -> np.ndarray:
    """A job begins when both its window and the technician, travelling from its location at the
    shift's start, allow it (arguments broadcast against each other)."""
    return np.maximum(window_start, shift_start + minutes * 60.0)


@dataclass(frozen=True)
class _Stage:
    reason: Reason
    allowed: np.ndarray  # jobs × technicians
    detail: Callable[[int, np.ndarray], str]  # (job index, candidates before the stage) -> text


def drop_penalties(problem: Problem) -> np.ndarray:
    w = problem.options.weights
    priority = np.array([j.priority for j in problem.jobs], dtype=float)
    penalty = w.drop_penalty + w.drop_penalty_per_priority * priority
    pinned = np.array([j.pinned_technician_id is not None for j in problem.jobs], dtype=bool)
    return np.where(pinned, np.maximum(penalty, PINNED_DROP_PENALTY), penalty)


def remaining_capacity(problem: Problem) -> np.ndarray:
    """Jobs each technician may still take in this plan (max_jobs 0 means no limit)."""
    n_jobs = len(problem.jobs)
    return np.array(
        [max(t.max_jobs - t.assigned_jobs, 0) if t.max_jobs else n_jobs for t in problem.technicians],
        dtype=np.int64,
    )


def compute(problem: Problem) -> Eligibility:
    jobs, techs = problem.jobs, problem.technicians
    km, minutes = technicians_to_jobs(problem)
    window_start, _ = _bounds([j.window for j in jobs], len(jobs))
    latest_start = np.array([j.latest_start() for j in jobs], dtype=float)
    shift_start, shift_end = _bounds([t.shift for t in techs], len(techs))
    duration_s = np.array([j.duration_minutes for j in jobs], dtype=float) * 60.0
    fits_shift = np.empty(km.shape, dtype=bool)
    w = problem.options.weights
    tier_gap = TOP_TIER - np.array([t.tier for t in techs], dtype=float)
    urgency = np.array([j.priority for j in jobs], dtype=float) + 1.0
    pair_cost = np.empty(km.shape)
    entry_cost = np.empty(km.shape)

    def fill(rows: slice) -> None:
        # The work starts within the job's window (arrival, after any wait) and ends within the shift.
        start = earliest_start(window_start[rows, None], shift_start[None, :], minutes[rows])
        np.less_equal(start, latest_start[rows, None], out=fits_shift[rows])
        fits_shift[rows] &= start + duration_s[rows, None] <= shift_end[None, :]
        entry = np.multiply(w.tier * urgency[rows, None], tier_gap[None, :], out=entry_cost[rows])
        cost = np.multiply(km[rows], w.travel_per_km, out=pair_cost[rows])
        cost += entry

    by_rows(len(jobs), fill, problem.options.workers)
    # Which pairs fit only without the technician's breaks, for the reason a job left out is given.
    unbroken = fits_shift.copy() if any(t.breaks for t in techs) else fits_shift
    _with_breaks(problem, fits_shift, minutes, (window_start, latest_start, duration_s))
    columns = columns_of(techs)
    for j, job in enumerate(jobs):
        if job.current_technician_id is not None and w.reassignment:
            # Every other technician moves the job; its own (any of its shifts) does not.
            entry_cost[j] += w.reassignment
            entry_cost[j, columns.get(job.current_technician_id, [])] -= w.reassignment
            pair_cost[j] = w.travel_per_km * km[j] + entry_cost[j]
    stages = _stages(problem, km, fits_shift, unbroken)

    candidates = np.ones((len(jobs), len(techs)), dtype=bool)
    reasons: dict[int, Unassigned] = {}
    for j, job in enumerate(jobs):
        if job.pinned_technician_id is None:
            continue
        candidates[j] = False
        if job.pinned_technician_id in columns:
            candidates[j, columns[job.pinned_technician_id]] = True
        else:
            reasons[j] = Unassigned(
                job.job_id,
                Reason.PINNED_TECHNICIAN_MISSING,
                f"pinned to {job.pinned_technician_id!r}, who is not among the request's technicians",
            )
    if not techs:  # no stage can take away candidates nobody had
        for j, job in enumerate(jobs):
            reasons.setdefault(
                j, Unassigned(job.job_id, Reason.NO_QUALIFIED_TECHNICIAN, "the request has no technicians")
            )
    radius = next(s.allowed for s in stages if s.reason is Reason.OUT_OF_RADIUS)
    placeable = candidates & radius
    for stage in stages:
        before = candidates
        candidates = candidates & stage.allowed
        lost = np.flatnonzero(before.any(axis=1) & ~candidates.any(axis=1))
        for j in lost:
            reasons[j] = _explain(jobs[j].job_id, jobs[j].pinned_technician_id, stage, j, before[j])

    return Eligibility(
        feasible=candidates,
        km=km,
        minutes=minutes,
        pair_cost=pair_cost,
        entry_cost=entry_cost,
        drop_penalty=drop_penalties(problem),
        capacity=remaining_capacity(problem),
        reasons=reasons,
        placeable=placeable,
    )


def columns_of(techs: tuple[Technician, ...]) -> dict[str, list[int]]:
    """Each technician's columns, by the id the request gave it (one per shift)."""
    columns: dict[str, list[int]] = {}
    for i, t in enumerate(techs):
        columns.setdefault(t.person, []).append(i)
    return columns


BREAK_ROWS = 2048  # jobs a block when checking breaks: a few jobs × technicians temporaries each


def _with_breaks(
    problem: Problem, fits_shift: np.ndarray, minutes: np.ndarray, job_times: tuple[np.ndarray, ...]
) -> None:
    """Pairs whose job, alone in the day, leaves no room for every break of the technician are taken
    out of `fits_shift`. Technicians alike in shift and breaks are checked together."""
    early, late, duration_s = (a[:, None] for a in job_times)
    groups: dict[tuple, list[int]] = {}
    for t, tech in enumerate(problem.technicians):
        if tech.breaks:
            groups.setdefault((day_schedule.shift_bounds(tech), tuple(day_schedule.pauses(tech))), []).append(
                t
            )
    for ((start, end), pauses), members in groups.items():
        cols = np.array(members)
        for first in range(0, fits_shift.shape[0], BREAK_ROWS):
            rows = slice(first, first + BREAK_ROWS)
            fits_shift[rows, cols] &= day_schedule.fits_alone(
                np.array(start), np.array(end), pauses, 60.0 * minutes[rows][:, cols],
                early[rows], late[rows], duration_s[rows],
            )  # fmt: skip


def _explain(job_id: str, pinned: str | None, stage: _Stage, j: int, before: np.ndarray) -> Unassigned:
    detail = stage.detail(j, before)
    if pinned is not None:
        return Unassigned(job_id, Reason.PINNED_TECHNICIAN_UNQUALIFIED, f"pinned to {pinned!r}: {detail}")
    return Unassigned(job_id, stage.reason, detail)


def _bounds(windows: list, n: int) -> tuple[np.ndarray, np.ndarray]:
    start = np.full(n, -np.inf)
    end = np.full(n, np.inf)
    for i, window in enumerate(windows):
        if window is not None:
            start[i], end[i] = window.start, window.end
    return start, end


def _stages(problem: Problem, km: np.ndarray, fits_shift: np.ndarray, unbroken: np.ndarray) -> list[_Stage]:
    jobs, techs = problem.jobs, problem.technicians
    skills = sorted({s for t in techs for s in t.skills} | {s for j in jobs for s in j.required_skills})
    column = {s: i for i, s in enumerate(skills)}
    has = np.zeros((len(techs), len(skills)), dtype=np.int32)
    needs = np.zeros((len(jobs), len(skills)), dtype=np.int32)
    for i, t in enumerate(techs):
        has[i, [column[s] for s in t.skills]] = 1
    for i, j in enumerate(jobs):
        needs[i, [column[s] for s in j.required_skills]] = 1
    lacks = (1 - has).T
    qualified = np.empty((len(jobs), len(techs)), dtype=bool)
    by_rows(len(jobs), lambda r: np.equal(needs[r] @ lacks, 0, out=qualified[r]), problem.options.workers)
    known_skills = {s for t in techs for s in t.skills}

    def skills_detail(j: int, _: np.ndarray) -> str:
        required = sorted(jobs[j].required_skills)
        missing = [s for s in required if s not in known_skills]
        if missing:
            return f"no technician has skill {', '.join(missing)} (required: {', '.join(required)})"
        return f"no technician has all of {', '.join(required)}"

    demand = np.array([j.demand for j in jobs], dtype=float)
    capacity = np.array([t.vehicle_capacity or np.inf for t in techs], dtype=float)
    carries = demand[:, None] <= capacity[None, :]

    def demand_detail(j: int, before: np.ndarray) -> str:
        largest = capacity[before].max()
        return f"demand {jobs[j].demand:g} is above the largest qualified vehicle capacity {largest:g}"

    radius = problem.options.max_radius_km
    within = km <= radius if radius else np.ones_like(km, dtype=bool)

    def radius_detail(j: int, before: np.ndarray) -> str:
        return f"nearest qualified technician is {km[j, before].min():.1f} km away; radius is {radius:g} km"

    def shift_detail(j: int, before: np.ndarray) -> str:
        breaks = int((before & unbroken[j]).sum())
        return (
            f"no qualified technician can start the {jobs[j].duration_minutes:g}-minute job within its "
            f"time window{' (and finish it there)' if jobs[j].must_finish_in_window else ''} and finish "
            f"it within the shift, travel included ({int(before.sum())} checked)"
            + (f"; {breaks} of them could without their breaks" if breaks else "")
        )

    return [
        _Stage(Reason.NO_QUALIFIED_TECHNICIAN, qualified, skills_detail),
        _Stage(Reason.DEMAND_EXCEEDS_CAPACITY, carries, demand_detail),
        _Stage(Reason.OUT_OF_RADIUS, within, radius_detail),
        _Stage(Reason.NO_SHIFT_OVERLAP, fits_shift, shift_detail),
    ]
