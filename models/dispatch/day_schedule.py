"""The earliest schedule of one technician's day in a given order of jobs, breaks included.

Every solver's plan is read through here, so that a day means the same whatever made it: work starts
within its job's window (waiting when early) and ends within the shift; a break starts within its
window and lasts its minutes, with no work and no travel during it; a break is taken between jobs,
where the technician is (after a job, or at home) or at the next job's place before the work starts;
breaks are taken in the order of their windows' starts, all of them. In ROUTE mode the day ends back
home (or at the technician's end location) within the shift; in ASSIGN mode at the last job's place.

Exact by dynamic programming over (stop, breaks taken so far): for each count of breaks taken, the
earliest time the technician is free; earlier is never worse, as waiting is allowed. Between two
stops, any run of the next breaks is taken, some where the technician is and the rest at the next
place.

`fits_alone` answers the same question for many (job, technician) pairs at once, each job alone in the
day (eligibility), vectorized; tests/models/dispatch/test_day_schedule.py holds the two to one answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.dispatch.problem import Break, Technician

EPS_S = 1e-6  # travel computed two ways (pairwise, in blocks) differs in the last bits


@dataclass(frozen=True)
class Pause:
    """A break to take: it starts within [early, late] and lasts `seconds`."""

    early: float
    late: float
    seconds: float


@dataclass(frozen=True)
class Stop:
    travel_s: float  # from the previous place (the first stop: from home)
    early: float  # the job's window on the start of work; -inf, inf when it has none
    late: float
    duration_s: float


@dataclass(frozen=True)
class Schedule:
    arrivals: list[float]  # when each stop's work starts (-inf: any time before its successors)
    breaks: list[float]  # when each break starts, in order
    end: float  # back home (ROUTE) or the end of the last work or break (ASSIGN)
    wait_s: float  # time spent waiting for a window or a break to open


def pauses(tech: Technician) -> list[Pause]:
    return [_pause(b) for b in sorted(tech.breaks, key=lambda b: (b.window.start, b.window.end))]


def _pause(pause: Break) -> Pause:
    return Pause(pause.window.start, pause.window.end, 60.0 * pause.duration_minutes)


def shift_bounds(tech: Technician) -> tuple[float, float]:
    return (tech.shift.start, tech.shift.end) if tech.shift else (-math.inf, math.inf)


def _take(clock: float, run: Sequence[Pause], starts: list[float]) -> float:
    """The clock after taking `run` in order from `clock` (starts appended), or nan when one is missed."""
    for pause in run:
        clock = max(clock, pause.early)
        if clock > pause.late + EPS_S:
            return math.nan
        starts.append(clock)
        clock += pause.seconds
    return clock


@dataclass(frozen=True)
class State:
    """The day so far with a given number of breaks taken."""

    clock: float  # free at the current place
    arrivals: tuple[float, ...]
    breaks: tuple[float, ...]
    wait_s: float


States = dict[int, State]  # breaks taken so far -> the earliest such day


def earliest(
    shift: tuple[float, float], pauses: Sequence[Pause], stops: Sequence[Stop], home_s: float | None
) -> Schedule | None:
    """The earliest schedule of `stops` in this order, or None when the day cannot be worked.
    `home_s`: travel from the last stop back home (ROUTE), or None (ASSIGN: the day ends there)."""
    if not pauses:
        return _without_breaks(shift, stops, home_s)
    states = begin(shift)
    for stop in stops:
        states = advance(states, pauses, stop, shift[1])
        if not states:
            return None
    return close(states, pauses, home_s, shift[1])


def _without_breaks(
    shift: tuple[float, float], stops: Sequence[Stop], home_s: float | None
) -> Schedule | None:
    """`earliest` when there is no break: the program's one state, followed in a plain loop (most days;
    the sequencing of a 10,000-job day calls this some 60,000 times)."""
    clock, end = shift
    arrivals = []
    wait_s = 0.0
    for stop in stops:
        ready = clock + stop.travel_s
        work = max(ready, stop.early)
        if work > stop.late + EPS_S or work + stop.duration_s > end + EPS_S:
            return None
        if math.isfinite(ready):
            wait_s += work - ready
        arrivals.append(work)
        clock = work + stop.duration_s
    if home_s is not None:
        clock += home_s
        if clock > end + EPS_S:
            return None
    return Schedule(arrivals, [], clock, wait_s)


def begin(shift: tuple[float, float]) -> States:
    return {0: State(shift[0], (), (), 0.0)}


def close(states: States, pauses: Sequence[Pause], home_s: float | None, end: float) -> Schedule | None:
    """The day ended: the breaks not yet taken (before or after the way home), within the shift."""
    best: Schedule | None = None
    for k, state in states.items():
        rest = pauses[k:]
        for m in range(len(rest) + 1) if home_s is not None else (len(rest),):
            starts: list[float] = []
            clock = _take(state.clock, rest[:m], starts)
            if home_s is not None:
                clock = _take(clock + home_s, rest[m:], starts)
            if not clock <= end + EPS_S:  # nan (a break missed) fails too
                continue
            if best is None or clock < best.end:
                waited = _waited(state.clock, home_s or 0.0, rest, starts, clock)
                best = Schedule(list(state.arrivals), [*state.breaks, *starts], clock, state.wait_s + waited)
    return best


def advance(states: States, pauses: Sequence[Pause], stop: Stop, end: float) -> States:
    """The states after the next stop: from each, any run of the next breaks taken on the way."""
    out: States = {}
    for k, state in states.items():
        for k2 in range(k, len(pauses) + 1):
            run = pauses[k:k2]
            for m in range(len(run) + 1):
                starts: list[float] = []
                ready = _take(state.clock, run[:m], starts)
                ready = _take(ready + stop.travel_s, run[m:], starts)
                if math.isnan(ready):
                    continue
                work = max(ready, stop.early)
                if work > stop.late + EPS_S or work + stop.duration_s > end + EPS_S:
                    continue
                done = work + stop.duration_s
                if k2 not in out or done < out[k2].clock:
                    waited = _waited(state.clock, stop.travel_s, run, starts, work)
                    out[k2] = State(
                        done, (*state.arrivals, work), (*state.breaks, *starts), state.wait_s + waited
                    )
    return out


def _waited(free: float, travel_s: float, run: Sequence[Pause], starts: list[float], until: float) -> float:
    """Idle time between being free at `free` and `until`: what travel and the breaks do not fill."""
    if not (math.isfinite(free) and math.isfinite(until)):
        return 0.0
    return max(0.0, until - free - travel_s - sum(p.seconds for p in run[: len(starts)]))


def fits_alone(
    shift_start: np.ndarray,
    shift_end: np.ndarray,
    pauses: Sequence[Pause],
    travel_s: np.ndarray,
    early: np.ndarray,
    late: np.ndarray,
    duration_s: np.ndarray,
) -> np.ndarray:
    """Whether each job, alone in the day, fits with every break: `earliest` of a one-stop ASSIGN day
    for arrays that broadcast (jobs down, technicians across), the technicians sharing `pauses`."""
    fits = np.zeros(np.broadcast_shapes(travel_s.shape, early.shape, shift_start.shape), dtype=bool)
    for before in range(len(pauses) + 1):  # breaks taken before the job
        for at_home in range(before + 1):  # of which the first ones where the day starts
            ok = np.ones_like(fits)
            clock = _take_all(np.broadcast_to(shift_start, fits.shape), pauses[:at_home], ok)
            clock = _take_all(clock + travel_s, pauses[at_home:before], ok)
            work = np.maximum(clock, early)
            ok &= work <= late + EPS_S
            done = work + duration_s
            ok &= done <= shift_end + EPS_S
            ok &= _take_all(done, pauses[before:], ok) <= shift_end + EPS_S
            fits |= ok
    return fits


def _take_all(clock: np.ndarray, run: Sequence[Pause], ok: np.ndarray) -> np.ndarray:
    """`_take` on arrays: where a break is missed, `ok` turns False."""
    for pause in run:
        clock = np.maximum(clock, pause.early)
        ok &= clock <= pause.late + EPS_S
        clock = clock + pause.seconds
    return clock
