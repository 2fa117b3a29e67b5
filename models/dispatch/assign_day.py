"""ASSIGN mode's assignment made into days a technician can work, one job after another.

The exact solves (min-cost flow, GAP) price each job alone, from the technician's location: two jobs
in the same hours may go to one technician. Here each technician's jobs are sequenced by cheapest
feasible insertion, the most valuable first (drop penalty, then the earliest window): every stop is
reached from the previous one, starts within its window (waiting when early) and ends within the
shift. A job that fits nowhere in its technician's day is moved to the qualified technician with room
(max_jobs and, when they count, shift minutes) that costs least by the ASSIGN objective and whose day
it fits; once any job moved, the jobs the solve left out are offered the same way, as room may have
opened. What fits nowhere is left out with the conflict named.

A day here ends with its last job's work: the shift bounds the work, not the way home, as eligibility
checks a job alone (ROUTE mode's days end at home).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.dispatch import day_schedule
from models.dispatch.day_schedule import Schedule, Stop
from models.dispatch.eligibility import Eligibility
from models.dispatch.problem import Problem, Reason, Unassigned
from models.dispatch.travel import end_nodes, legs, locations, travel

# A moved job tries at most this many qualified technicians with room, the cheapest first, so that a
# city-scale day with many conflicts stays fast.
MOVE_CANDIDATES = 40
COLLISIONS_NAMED = 3
Matrix = tuple[list[list[float]], list[list[float]]]  # (km, seconds), home first


@dataclass(frozen=True)
class Days:
    tech_of_job: np.ndarray  # -1: left out
    routes: dict[int, list[int]]  # technician -> its jobs in order
    schedules: dict[int, Schedule]  # technician -> its day's times (arrivals -inf: unbounded)
    leg_km: dict[int, list[float]]  # technician -> travel to each stop from the previous one (or home)
    left_out: dict[int, Unassigned]  # jobs this pass left out (or kept out), and why
    minutes_left: np.ndarray | None  # per technician, when shift minutes count

    @property
    def travel_km(self) -> float:
        return float(sum(sum(km) for km in self.leg_km.values()))


class _Timing:
    """The times a route must keep: windows on the start of work, shifts and breaks on the whole day
    (models/dispatch/day_schedule.py)."""

    def __init__(self, problem: Problem, home: bool) -> None:
        jobs, techs = problem.jobs, problem.technicians
        self.home = home  # the day ends back home (ROUTE's days), not at the last job
        self.early = [j.window.start if j.window else -math.inf for j in jobs]
        self.late = [j.latest_start() for j in jobs]
        self.duration_s = [60.0 * j.duration_minutes for j in jobs]
        self.shift = [day_schedule.shift_bounds(t) for t in techs]
        self.pauses = [day_schedule.pauses(t) for t in techs]

    def schedule(
        self, t: int, members: list[int], seconds: list[list[float]], order: list[int]
    ) -> Schedule | None:
        """The earliest schedule along `order` (positions in `members`, 1-based; 0 is home), or None
        when a window, the shift or a break is broken. Without a shift the day has no start: stops
        before the first window arrive at -inf (any time before it)."""
        stops = []
        here = 0
        for p in order:
            j = members[p - 1]
            stops.append(Stop(seconds[here][p], self.early[j], self.late[j], self.duration_s[j]))
            here = p
        home_s = seconds[here][0] if self.home else None
        return day_schedule.earliest(self.shift[t], self.pauses[t], stops, home_s)


class Sequencer:
    """Technicians' days built by cheapest feasible insertion (ASSIGN's days; OfferSlots' in either
    mode, `home` for ROUTE's)."""

    def __init__(self, problem: Problem, elig: Eligibility, home: bool = False) -> None:
        self.problem, self.elig = problem, elig
        self.n_tech = len(problem.technicians)
        self.timing = _Timing(problem, home)
        self.points = locations(problem)
        self.ends = end_nodes(problem)

    def matrix(self, t: int, members: list[int]) -> Matrix:
        """(km, seconds) among the technician's home (0) and `members` (1...): row 0 leaves from
        home, column 0 arrives where the day ends (home, or the end location)."""
        jobs = [self.n_tech + j for j in members]
        rows, cols = np.array([t, *jobs]), np.array([self.ends[t], *jobs])
        km, minutes = travel(self.problem, rows, cols, self.points)
        return km.tolist(), (60.0 * minutes).tolist()

    def insert(
        self, t: int, members: list[int], travel_km: Matrix, route: list[int], p: int
    ) -> tuple[list[int], Schedule] | None:
        """`route` (positions in `members`) with position `p` inserted where it adds the fewest
        kilometres while every stop keeps its times, and its schedule; None when it fits nowhere."""
        km, seconds = travel_km
        best: tuple[float, list[int], Schedule] | None = None
        for at in range(len(route) + 1):
            trial = [*route[:at], p, *route[at:]]
            times = self.timing.schedule(t, members, seconds, trial)
            if times is None:
                continue
            before = route[at - 1] if at else 0
            detour = km[before][p] + (km[p][route[at]] - km[before][route[at]] if at < len(route) else 0.0)
            if best is None or detour < best[0] - 1e-9:
                best = (detour, trial, times)
        return None if best is None else (best[1], best[2])

    def day(self, t: int, jobs: list[int]) -> tuple[list[int], Schedule, list[int]]:
        """(route, its schedule, jobs that fit nowhere in it) of one technician's jobs, the most
        valuable inserted first."""
        timing, penalty = self.timing, self.elig.drop_penalty
        members = sorted(jobs, key=lambda j: (-penalty[j], timing.early[j], timing.late[j], j))
        matrix = self.matrix(t, members)
        route: list[int] = []
        times = self.empty(t)
        displaced = []
        for p in range(1, len(members) + 1):
            found = self.insert(t, members, matrix, route, p)
            if found is None:
                displaced.append(members[p - 1])
            else:
                route, times = found
        return [members[p - 1] for p in route], times, displaced

    def empty(self, t: int) -> Schedule:
        """The day without jobs: its breaks only (validation keeps them within the shift)."""
        home_s = 0.0 if self.timing.home else None
        return day_schedule.earliest(self.timing.shift[t], self.timing.pauses[t], [], home_s) or Schedule(
            [], [], -math.inf, 0.0
        )

    def fit(self, t: int, route: list[int], j: int) -> tuple[list[int], Schedule] | None:
        """The technician's route (jobs) with job j inserted where it fits best, and its schedule."""
        members = [*route, j]
        found = self.insert(t, members, self.matrix(t, members), list(range(1, len(members))), len(members))
        return None if found is None else ([members[p - 1] for p in found[0]], found[1])


def schedule(
    problem: Problem, elig: Eligibility, tech_of_job: np.ndarray, minutes_left: np.ndarray | None
) -> Days:
    """The assignment (-1: left out) as days; `minutes_left` per technician when shift minutes count."""
    seq = Sequencer(problem, elig)
    tech_of_job = tech_of_job.copy()
    left = None if minutes_left is None else minutes_left.astype(float)
    routes: dict[int, list[int]] = {}
    schedules: dict[int, Schedule] = {}
    displaced: dict[int, int] = {}  # job -> the technician whose day had no time for it
    done = np.flatnonzero(tech_of_job >= 0)
    by_tech = done[np.argsort(tech_of_job[done], kind="stable")]
    for group in np.split(by_tech, np.flatnonzero(np.diff(tech_of_job[by_tech])) + 1):
        if not group.size:
            continue
        t = int(tech_of_job[group[0]])
        routes[t], schedules[t], out = seq.day(t, group.tolist())
        for j in out:
            displaced[j] = t
            tech_of_job[j] = -1
            if left is not None:
                left[t] += _work(elig, problem, j, t)
    left_out: dict[int, Unassigned] = {}
    if displaced:
        # Room has opened where jobs moved out: the jobs the solve left out compete for it too.
        waiting = [j for j in range(len(problem.jobs)) if tech_of_job[j] < 0 and j not in elig.reasons]
        waiting.sort(key=lambda j: (-elig.drop_penalty[j], j))
        load = np.bincount(tech_of_job[tech_of_job >= 0], minlength=seq.n_tech)
        for j in waiting:
            why = _place(seq, j, (tech_of_job, load), routes, schedules, left, displaced.get(j))
            if why is not None:
                left_out[j] = why  # else placed, or left out as the solve left it, for the same reason
    return Days(tech_of_job, routes, schedules, _leg_km(seq, routes), left_out, left)


def _work(elig: Eligibility, problem: Problem, j: int, t: np.ndarray | int) -> np.ndarray:
    """Shift minutes a job takes from a technician (travel from its location and time on site), as
    ASSIGN_CAPACITY_SHIFT_MINUTES counts them."""
    return elig.minutes[j, t] + problem.jobs[j].duration_minutes


def _place(
    seq: Sequencer,
    j: int,
    assignment: tuple[np.ndarray, np.ndarray],
    routes: dict[int, list[int]],
    schedules: dict[int, Schedule],
    minutes_left: np.ndarray | None,
    was_on: int | None,
) -> Unassigned | None:
    """Job j into the day of the qualified technician with room that costs least and fits it, or why it
    stays out; None also when it stays out for want of room, as the solve left it. `assignment`: each
    job's technician and each technician's job count, updated; `was_on`: the technician whose day had
    no time for it."""
    problem, elig = seq.problem, seq.elig
    tech_of_job, load = assignment
    qualified = np.flatnonzero(elig.feasible[j])
    room = qualified[load[qualified] < elig.capacity[qualified]]
    if minutes_left is not None:
        room = room[minutes_left[room] >= _work(elig, problem, j, room) - day_schedule.EPS_S / 60]
    if not room.size and was_on is None:
        return None
    held = np.array([problem.technicians[t].assigned_jobs for t in room])
    marginal = elig.pair_cost[j, room] + problem.options.weights.balance * (held + load[room])
    order = np.argsort(marginal, kind="stable")[:MOVE_CANDIDATES]
    for k in order.tolist():
        t = int(room[k])
        found = seq.fit(t, routes.get(t, []), j)
        if found is None:
            continue
        if marginal[k] >= elig.drop_penalty[j]:
            name = problem.technicians[t].technician_id
            return Unassigned(
                problem.jobs[j].job_id,
                Reason.TOO_COSTLY,
                f"the cheapest qualified technician whose day it fits, {name!r}, would cost "
                f"{marginal[k]:.1f}, more than the drop penalty {elig.drop_penalty[j]:.1f}",
            )
        routes[t], schedules[t] = found
        tech_of_job[j] = t
        load[t] += 1
        if minutes_left is not None:
            minutes_left[t] -= _work(elig, problem, j, t)
        return None
    return Unassigned(
        problem.jobs[j].job_id,
        Reason.CAPACITY_EXHAUSTED,
        _conflict(seq, j, qualified.size, room.size, order.size, was_on, routes, schedules),
    )


def _conflict(
    seq: Sequencer,
    j: int,
    qualified: int,
    with_room: int,
    tried: int,
    was_on: int | None,
    routes: dict[int, list[int]],
    schedules: dict[int, Schedule],
) -> str:
    """What keeps a job that fits some technician alone out of every day."""
    problem, timing = seq.problem, seq.timing
    text = f"fits alone, but not into the day of any of its {qualified} qualified technicians"
    if was_on is not None:
        name = problem.technicians[was_on].technician_id
        # The jobs whose work overlaps the hours this job could be worked in.
        latest_end = timing.late[j] + timing.duration_s[j]
        colliding = [
            problem.jobs[k].job_id
            for k, at in zip(routes[was_on], schedules[was_on].arrivals, strict=True)
            if at < latest_end and at + timing.duration_s[k] > timing.early[j]
        ][:COLLISIONS_NAMED]
        text += (
            f": on {name}'s day it collides with {', '.join(colliding)}"
            if colliding
            else f": {name}'s day has no time for it between its other jobs, travel included"
        )
    if not with_room:
        return text + "; the others are full (max_jobs or shift minutes)"
    if tried == with_room:
        return text + f"; all {with_room} with room left were tried (window, travel, shift)"
    return (
        text + f"; the {tried} cheapest of the {with_room} with room left were tried (window, travel, shift)"
    )


def _leg_km(seq: Sequencer, routes: dict[int, list[int]]) -> dict[int, list[float]]:
    """Each stop's travel from the previous one (the first from home), all routes at once."""
    techs = [t for t, route in routes.items() if route]
    if not techs:
        return {}
    origins = np.concatenate([[t, *(seq.n_tech + j for j in routes[t][:-1])] for t in techs])
    ends = np.concatenate([[seq.n_tech + j for j in routes[t]] for t in techs])
    km, _ = legs(seq.problem, seq.points, origins.astype(np.int64), ends.astype(np.int64))
    cuts = np.cumsum([len(routes[t]) for t in techs])[:-1]
    return {t: part.tolist() for t, part in zip(techs, np.split(km, cuts), strict=True)}
