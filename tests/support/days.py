"""The check every dispatch answer must pass, whatever its mode: no technician is booked twice.

Computed from the problem alone (its own haversine, or the request's matrices), never from a solver's
arrays: per technician, stops numbered 0, 1, ... in the order of their arrivals, each job's work
starting within its window and the shift and ending within the shift, and each stop reached after
the previous job's work plus the travel between the two.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

from models.dispatch.problem import Assignment, GeoPoint, Problem, Route, holds


def km_between(a: GeoPoint, b: GeoPoint) -> float:
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lng - a.lng)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def _points(problem: Problem) -> list[GeoPoint]:
    """Every location, indexed as the request's matrices: technicians, jobs, then end locations."""
    ends = [t.end_location for t in problem.technicians if t.end_location is not None]
    return [t.location for t in problem.technicians] + [j.location for j in problem.jobs] + ends


def end_index(problem: Problem, t: int) -> int:
    """The location where technician t's ROUTE day ends: its own, or its end location's."""
    techs = problem.technicians
    if techs[t].end_location is None:
        return t
    return len(techs) + len(problem.jobs) + sum(u.end_location is not None for u in techs[:t])


def start_index(problem: Problem, t: int, route: Route) -> int:
    """Where technician t's day of `route` starts: its location, or for a shift after its first, where
    the day before ended."""
    tech = problem.technicians[t]
    later = (
        bool(tech.shifts)
        and route.shift is not None
        and route.shift.start > min(w.start for w in tech.shifts)
    )
    return end_index(problem, t) if later else t


def assert_ends_reached(problem: Problem, routes: Iterable[Route], slack_s: float) -> None:
    """In ROUTE mode every day ends where the technician's day ends (back at its location, or at its
    end location) within the shift, and its kilometres are the legs from the start to that end."""
    if problem.options.mode.value != "route":
        return
    n_tech = len(problem.technicians)
    tech_index = {t.technician_id: i for i, t in enumerate(problem.technicians)}
    job_index = {j.job_id: n_tech + i for i, j in enumerate(problem.jobs)}
    for route in routes:
        if not route.job_ids:
            continue
        t = tech_index[route.technician_id]
        places = [
            start_index(problem, t, route),
            *(job_index[j] for j in route.job_ids),
            end_index(problem, t),
        ]
        km = sum(leg_km(problem, a, b) for a, b in itertools.pairwise(places))
        assert math.isclose(route.travel_km, km, rel_tol=1e-6, abs_tol=1e-3), (route.technician_id, "km")
        if route.end is not None and route.shift is not None:
            assert route.end <= route.shift.end + slack_s, (route.technician_id, "back after the shift")


def leg_km(problem: Problem, origin: int, end: int) -> float:
    """Kilometres from location `origin` to `end` (indices as the request's matrices)."""
    if problem.options.distance_km is not None:
        return float(problem.options.distance_km[origin * len(_points(problem)) + end])
    points = _points(problem)
    return km_between(points[origin], points[end])


def travel_s(problem: Problem, origin: int, end: int) -> float:
    """Seconds from location `origin` to `end`, indexed as the request's matrices."""
    options = problem.options
    if options.duration_min is not None:
        return 60.0 * float(options.duration_min[origin * len(_points(problem)) + end])
    return 3600.0 * leg_km(problem, origin, end) / options.speed_kmh


def assert_no_double_booking(problem: Problem, assignments: Iterable[Assignment], slack_s: float) -> None:
    """Every technician's stops form a day it can work (`slack_s`: rounding the answer allows)."""
    n_tech = len(problem.technicians)
    tech_index = {t.technician_id: i for i, t in enumerate(problem.technicians)}
    job_index = {j.job_id: n_tech + i for i, j in enumerate(problem.jobs)}
    jobs = {j.job_id: j for j in problem.jobs}
    by_tech: dict[str, list[Assignment]] = {}
    for a in assignments:
        by_tech.setdefault(a.technician_id, []).append(a)
    for tech_id, stops in by_tech.items():
        tech = problem.technicians[tech_index[tech_id]]
        stops.sort(key=lambda a: a.sequence)
        assert [a.sequence for a in stops] == list(range(len(stops))), (tech_id, "numbered 0, 1, ...")
        for a in stops:
            if a.arrival is None:
                continue
            job = jobs[a.job_id]
            if job.window is not None:
                assert job.window.start - slack_s <= a.arrival <= job.latest_start() + slack_s, a.job_id
            if tech.shift is not None:
                assert tech.shift.start - slack_s <= a.arrival, a.job_id
                assert a.arrival + 60 * job.duration_minutes <= tech.shift.end + slack_s, a.job_id
        # Without a shift, stops before the first window may be unbounded (no arrival): only those.
        timed = [a for a in stops if a.arrival is not None]
        assert all(a.arrival is None for a in stops[: len(stops) - len(timed)]), tech_id
        for before, after in itertools.pairwise(timed):
            done = before.arrival + 60 * jobs[before.job_id].duration_minutes
            gap = travel_s(problem, job_index[before.job_id], job_index[after.job_id])
            assert after.arrival >= done + gap - slack_s, (tech_id, before.job_id, after.job_id, "overlap")
        if timed and tech.shift is not None and timed[0] is stops[0]:
            reach = tech.shift.start + travel_s(problem, tech_index[tech_id], job_index[timed[0].job_id])
            assert timed[0].arrival >= reach - slack_s, (tech_id, timed[0].job_id, "reached from home")


def assert_breaks_kept(
    problem: Problem, routes: Iterable[Route], assignments: Iterable[Assignment], slack_s: float
) -> None:
    """Every technician takes each of its breaks within its window and for its minutes, with no work and
    no travel inside one: between two stops (home first; in ROUTE mode home last), the time the breaks
    leave free holds the whole drive in one piece, at one end of the gap or the other."""
    n_tech = len(problem.technicians)
    tech_index = {t.technician_id: i for i, t in enumerate(problem.technicians)}
    job_index = {j.job_id: i for i, j in enumerate(problem.jobs)}
    arrival = {a.job_id: a.arrival for a in assignments}
    routed = problem.options.mode.value == "route"
    for route in routes:
        t = tech_index[route.technician_id]
        tech = problem.technicians[t]
        wanted = [b for b in tech.breaks if route.shift is None or holds(route.shift, b)]
        assert len(route.breaks) == len(wanted), (route.technician_id, "every break is taken")
        for taken, pause in zip(
            route.breaks, sorted(wanted, key=lambda b: (b.window.start, b.window.end)), strict=True
        ):
            assert pause.window.start - slack_s <= taken.start <= pause.window.end + slack_s, (
                route.technician_id
            )
            assert abs(taken.duration_minutes - pause.duration_minutes) < 1e-6
        pauses = sorted((b.start, b.start + 60 * b.duration_minutes) for b in route.breaks)
        for (_, end_a), (start_b, _) in itertools.pairwise(pauses):
            assert end_a <= start_b + slack_s, (route.technician_id, "breaks overlap")
        # The day as busy intervals: work at each stop, and the drives between them.
        places = [start_index(problem, t, route), *(n_tech + job_index[j] for j in route.job_ids)]
        starts = [arrival[j] for j in route.job_ids]
        if any(s is None for s in starts):
            continue
        ends = [
            s + 60 * problem.jobs[job_index[j]].duration_minutes
            for s, j in zip(starts, route.job_ids, strict=True)
        ]
        for s, e in zip(starts, ends, strict=True):
            for b0, b1 in pauses:
                assert e <= b0 + slack_s or b1 <= s + slack_s, (route.technician_id, "work inside a break")
        free_from = [route.start if route.start is not None else -math.inf, *ends]
        until = [*starts, *([route.end] if routed and route.end is not None else [])]
        legs = list(zip(places, places[1:] + ([end_index(problem, t)] if routed else []), strict=False))
        legs = legs[: len(until)]
        for (a, b), f, u in zip(legs, free_from[: len(until)], until, strict=True):
            drive = travel_s(problem, a, b)
            inside = [(max(b0, f), min(b1, u)) for b0, b1 in pauses if b1 > f and b0 < u]
            edges = [f, *(x for iv in inside for x in iv), u]
            gaps = [edges[i + 1] - edges[i] for i in range(0, len(edges) - 1, 2)]
            assert max(gaps) >= drive - slack_s, (route.technician_id, "travel inside a break")
