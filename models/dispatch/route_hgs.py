"""ROUTE mode with PyVRP's hybrid genetic search (HGS), where the day maps onto PyVRP's model.

The mapping: technicians alike in home, end, shift, loads and profile are one vehicle type with as
many vehicles, starting at the depot of their home and ending at that of their end location (home,
unless `end_location` says otherwise), their shift the type's time window, their
loads dimensions (demand against `vehicle_capacity`, one per job against `max_jobs − assigned_jobs`,
and one per skill some job needs and some technician lacks: each job needing it loads 1, a technician
without it carries 0); every job a client that may be left out for a prize (its drop penalty), its
time window bounding the start of service (the arrival window, `latest_start`), its duration the
service time. So skills, vehicle capacity and shifts are PyVRP's own constraints; what remains of the
eligibility matrix (pins and the radius, `Eligibility.placeable`) and the entry costs (tier and
reassignment terms, per job entered) become routing profiles: one matrix per group of technicians
alike in both, with arcs into the jobs they may not take made too long to use. A day whose profiles'
matrices would pass PROFILE_CELLS (REPLAN_PROFILE_CELLS for a re-plan) does not map and stays with
OR-Tools (a city-scale day is split into regions first).

The balance term is not part of PyVRP's objective: the portfolio compares every plan on Shifu's own
objective (`objective`), so a plan that crowds one technician loses to one that does not.
PyVRP's data is integer: costs in 1/COST_UNITS of a currency unit, times in whole seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from models.dispatch import day_routes
from models.dispatch.eligibility import Eligibility
from models.dispatch.problem import Assignment, GeoPoint, Plan, Problem, Status, n_locations
from models.dispatch.route_plan import current_days, leftover, replanning, time_frame, with_objective
from models.dispatch.travel import end_nodes, travel

if TYPE_CHECKING:  # imported where it runs: the day goes to OR-Tools when PyVRP is not installed
    import pyvrp

# Each routing profile is a full distance and a full duration matrix: this many cells in all at most
# (two int64 matrices of 8M cells: 128 MB); past it, OR-Tools routes the day. Skills are load
# dimensions, so a first plan has a profile per tier (and per pin and radius pattern): the demo's
# 300-job day has 3, where its 59 skill sets as profiles would make 77. A re-plan, where every
# technician holding jobs is a profile of its own (the demo's whole day re-planned, 80 technicians and
# 300 jobs: 12M cells), gets REPLAN_PROFILE_CELLS (384 MB).
PROFILE_CELLS = 8_000_000
REPLAN_PROFILE_CELLS = 24_000_000
COST_UNITS = 1000  # integer costs: a thousandth of a unit (a metre at 1 per km)
LOAD_SCALE = 100  # integer loads: 1/100 of a demand unit
# PyVRP stops at its time limit and the plan is read back in milliseconds; it is given the time left
# less this much so that the call keeps to its limit.
MARGIN_S = 0.05
MAX_PRIZE = 2.0**53  # integer costs stay exact in a double
PENALTY_FLOOR = 1e5  # PyVRP's default largest penalty
STALL_ITERATIONS = 100_000  # iterations without a better plan that end the search before its limit


def profiles(problem: Problem, elig: Eligibility, cells: float | None = None) -> np.ndarray | None:
    """Each technician's profile (technicians alike in the jobs pins and the radius let them take and in
    what entering each costs them: tier and reassignment terms), or None when their matrices would pass
    PROFILE_CELLS."""
    keys = [
        np.ascontiguousarray(elig.placeable[:, t]).tobytes()
        + np.ascontiguousarray(elig.entry_cost[:, t]).tobytes()
        for t in range(len(problem.technicians))
    ]
    distinct: dict[bytes, int] = {}
    of_tech = np.array([distinct.setdefault(key, len(distinct)) for key in keys], dtype=np.int64)
    nodes = n_locations(problem)
    if cells is None:
        cells = REPLAN_PROFILE_CELLS if replanning(problem) else PROFILE_CELLS
    return of_tech if len(distinct) * nodes * nodes <= cells else None


@dataclass(frozen=True)
class _Day:
    """The day on PyVRP's terms, and what reading its plan back takes: nodes are the technicians'
    homes, the routed jobs (client c is job `routed[c]`), then the end locations."""

    problem: Problem
    elig: Eligibility
    routed: np.ndarray  # the jobs some technician may take
    origin: float  # Unix seconds of time 0
    horizon: int
    km: np.ndarray  # nodes × nodes
    seconds: np.ndarray  # nodes × nodes travel, whole seconds
    ends: np.ndarray  # each technician's node where its day ends


def solve(
    problem: Problem,
    elig: Eligibility,
    deadline: float,
    seed: int,
    cells: float | None = None,
    start: Plan | None = None,
    warm: bool = True,
) -> Plan:
    """PyVRP's search of the day, from `start`'s routes when given (another search's plan), else (with
    `warm`) from the plan a re-plan replaces, else from scratch."""
    import pyvrp

    started = time.perf_counter()
    groups = profiles(problem, elig, cells)
    if groups is None:
        raise ValueError("the technicians' routing profiles would pass the matrix cells PyVRP is given")
    routed = np.array(
        [j for j in range(len(problem.jobs)) if j not in elig.reasons and elig.feasible[j].any()],
        dtype=np.int64,
    )
    if not routed.size or not problem.technicians:
        return with_objective(
            problem, elig, Plan([], leftover(problem, elig, set()), Status.FEASIBLE, math.nan, 0.0, 0.0)
        )
    day = _day(problem, elig, routed)
    distances, durations = _matrices(day, groups)
    demand = np.rint(np.array([problem.jobs[j].demand for j in routed]) * LOAD_SCALE).astype(np.int64)
    prizes = np.rint(np.minimum(elig.drop_penalty[routed] * COST_UNITS, MAX_PRIZE)).astype(np.int64)
    needs, has = _skill_loads(day)
    clients = _clients(day, np.column_stack([demand, np.ones_like(demand), needs]), prizes)
    depots, vehicle_types, fleets = _fleet(day, groups, has, total_load=int(demand.sum()) + 1)
    data = pyvrp.ProblemData(
        locations=[pyvrp.Location(0, 0) for _ in range(len(day.km))],
        clients=clients,
        depots=[pyvrp.Depot(location=t) for t in depots],
        vehicle_types=vehicle_types,
        distance_matrices=distances,  # type: ignore[arg-type]
        duration_matrices=durations,  # type: ignore[arg-type]
    )
    days: list[list[int]] | None = None
    if start is not None:
        orders = day_routes.orders_of(problem, start)
        days = [orders.get(t, []) for t in range(len(problem.technicians))]
    elif warm and replanning(problem):
        days = current_days(problem, elig)
    initial = _solution(data, day, fleets, days) if days else None
    best = _search(data, prizes, deadline, seed, initial)
    if not best.is_feasible():
        return Plan([], [elig.reasons[j] for j in sorted(elig.reasons)], Status.NO_SOLUTION, math.nan,
                    (time.perf_counter() - started) * 1000, 0.0)  # fmt: skip
    return _plan(day, best, clients, vehicle_types, fleets, started)


def _day(problem: Problem, elig: Eligibility, routed: np.ndarray) -> _Day:
    origin, horizon = time_frame(problem)
    n_tech = len(problem.technicians)
    ends = end_nodes(problem)
    own = ends != np.arange(n_tech)  # technicians whose day ends at an end location of theirs
    nodes = np.concatenate([np.arange(n_tech), n_tech + routed, ends[own]]).astype(np.int64)
    day_ends = np.arange(n_tech)
    day_ends[own] = n_tech + routed.size + np.arange(int(own.sum()))
    km, minutes = travel(problem, nodes, nodes)
    seconds = np.ceil(minutes * 60.0).astype(np.int64)
    return _Day(problem, elig, routed, origin, horizon, km, seconds, day_ends)


def _matrices(day: _Day, groups: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(distance, duration) matrices of each profile: travel cost plus the entry cost of the job entered
    (tier and reassignment terms), and arcs into the jobs a pin or the radius keeps from the profile too
    long to use."""
    weights = day.problem.options.weights
    n_tech, n_clients = len(day.problem.technicians), day.routed.size
    travel_cost = np.rint(weights.travel_per_km * day.km * COST_UNITS).astype(np.int64)
    too_far = 10 * day.horizon
    distances, durations = [], []
    for p in range(int(groups.max()) + 1):
        t = int(np.flatnonzero(groups == p)[0])
        distance, duration = travel_cost.copy(), day.seconds.copy()
        entry = np.rint(day.elig.entry_cost[day.routed, t] * COST_UNITS).astype(np.int64)
        distance[:, n_tech : n_tech + n_clients] += entry[None, :]
        barred = n_tech + np.flatnonzero(~day.elig.placeable[day.routed, t])
        distance[:, barred] = too_far
        duration[:, barred] = too_far
        np.fill_diagonal(distance, 0)  # staying put costs nothing, whatever is added to entering a job
        np.fill_diagonal(duration, 0)
        distances.append(distance)
        durations.append(duration)
    return distances, durations


def lacked_skills(problem: Problem, jobs: Sequence[int]) -> list[str]:
    """The skills some of these jobs (indices) need and some technician lacks, sorted."""
    needed = sorted({s for j in jobs for s in problem.jobs[j].required_skills})
    return [s for s in needed if any(s not in t.skills for t in problem.technicians)]


def _skill_loads(day: _Day) -> tuple[np.ndarray, np.ndarray]:
    """(clients × dimensions: 1 where the job needs the skill, technicians × dimensions: whether the
    technician has it), a dimension per skill some routed job needs and some technician lacks."""
    jobs, techs = day.problem.jobs, day.problem.technicians
    skills = lacked_skills(day.problem, day.routed.tolist())
    needs = np.array(
        [[s in jobs[j].required_skills for s in skills] for j in day.routed.tolist()], dtype=np.int64
    ).reshape(len(day.routed), len(skills))
    has = np.array([[s in t.skills for s in skills] for t in techs], dtype=bool).reshape(
        len(techs), len(skills)
    )
    return needs, has


def _bounds(day: _Day, start: float, end: float) -> tuple[int, int]:
    """A window in whole seconds from the origin, within the horizon and never reversed."""
    early = max(0, math.ceil(start - day.origin))
    return early, max(early, min(day.horizon, math.floor(end - day.origin)))


def _clients(day: _Day, loads: np.ndarray, prizes: np.ndarray) -> list[pyvrp.Client]:
    """Each routed job, its window bounding the start of service; `loads` is clients × dimensions
    (demand, the job itself, the skills it needs)."""
    import pyvrp

    n_tech = len(day.problem.technicians)
    clients = []
    for c, j in enumerate(day.routed.tolist()):
        job = day.problem.jobs[j]
        early, late = (
            (0, day.horizon) if job.window is None else _bounds(day, job.window.start, job.latest_start())
        )
        clients.append(
            pyvrp.Client(
                location=n_tech + c,
                delivery=loads[c].tolist(),
                service_duration=math.ceil(60.0 * job.duration_minutes),
                tw_early=early,
                tw_late=late,
                prize=int(prizes[c]),
                required=False,
            )
        )
    return clients


def _fleet(
    day: _Day, groups: np.ndarray, has: np.ndarray, total_load: int
) -> tuple[list[int], list[pyvrp.VehicleType], list[list[int]]]:
    """(each depot's node, the vehicle types, the technicians each type's routes go to).

    Technicians alike in home, end, shift, vehicle, job count, skills and profile are one vehicle type
    with that many vehicles (a fleet at one depot is PyVRP's own model, which it searches best); homes
    and ends in one place are one depot. A skill's dimension holds as many jobs as the technician may
    take, or none."""
    import pyvrp

    depot_of: dict[tuple[float, float], int] = {}
    depot_location: list[int] = []

    def depot(point: GeoPoint, node: int) -> int:
        place = (point.lat, point.lng)
        if place not in depot_of:
            depot_of[place] = len(depot_location)
            depot_location.append(node)
        return depot_of[place]

    kinds: dict[tuple, list[int]] = {}
    for t, tech in enumerate(day.problem.technicians):
        home = depot(tech.location, t)
        end = home if tech.end_location is None else depot(tech.end_location, int(day.ends[t]))
        early, late = (
            (0, day.horizon) if tech.shift is None else _bounds(day, tech.shift.start, tech.shift.end)
        )
        capacity = int(np.rint(tech.vehicle_capacity * LOAD_SCALE)) if tech.vehicle_capacity else total_load
        count = int(day.elig.capacity[t])
        loads = (capacity, count, *(count * has[t]).tolist())
        kinds.setdefault((home, end, early, late, loads, int(groups[t])), []).append(t)
    vehicle_types = [
        pyvrp.VehicleType(
            num_available=len(members),
            capacity=list(loads),
            start_depot=home,
            end_depot=end,
            tw_early=early,
            tw_late=late,
            profile=profile,
        )
        for (home, end, early, late, loads, profile), members in kinds.items()
    ]
    return depot_location, vehicle_types, [list(members) for members in kinds.values()]


def _solution(
    data: pyvrp.ProblemData, day: _Day, fleets: list[list[int]], days: list[list[int]]
) -> pyvrp.Solution | None:
    """A starting point on PyVRP's terms: each technician's jobs (`days`, indices into the problem) in
    their order."""
    import pyvrp

    client = {int(j): c for c, j in enumerate(day.routed)}
    kind = {t: k for k, members in enumerate(fleets) for t in members}
    routes = [
        pyvrp.Route(data, [client[j] for j in jobs if j in client], kind[t])
        for t, jobs in enumerate(days)
        if any(j in client for j in jobs)
    ]
    try:
        return pyvrp.Solution(data, routes)
    except RuntimeError:  # e.g. more routes of a kind than it has vehicles: search from scratch
        return None


def _search(
    data: pyvrp.ProblemData,
    prizes: np.ndarray,
    deadline: float,
    seed: int,
    start: pyvrp.Solution | None = None,
) -> pyvrp.Solution:
    import pyvrp
    from pyvrp.stop import MaxRuntime, MultipleCriteria, NoImprovement

    budget = max(0.05, deadline - time.time() - MARGIN_S)
    # Penalties for excess load and lateness must be able to outgrow the prizes, or a plan that keeps
    # every job by overloading a technician looks better than one that leaves a job out.
    penalty = pyvrp.PenaltyParams(max_penalty=max(PENALTY_FLOOR, 10.0 * float(prizes.max(initial=0))))
    params = pyvrp.SolveParams(penalty=penalty)
    # Stopped by the clock, or by a long run without improvement: a small day then gets the same plan
    # every time, whatever the machine's speed.
    stop = MultipleCriteria([MaxRuntime(budget), NoImprovement(STALL_ITERATIONS)])
    result = pyvrp.solve(
        data, stop, seed=seed, params=params, display=False, collect_stats=False, initial_solution=start
    )
    return result.best


def _plan(
    day: _Day,
    best: pyvrp.Solution,
    clients: list[pyvrp.Client],
    vehicle_types: list[pyvrp.VehicleType],
    fleets: list[list[int]],
    started: float,
) -> Plan:
    """PyVRP's routes as Shifu's plan, each route to the next technician of its vehicle type."""
    jobs, techs = day.problem.jobs, day.problem.technicians
    n_tech = len(techs)
    assignments, served, home_km = [], set(), 0.0
    for route in best.routes():
        kind = int(route.vehicle_type())
        t = fleets[kind].pop(0)
        previous, sequence = t, 0
        # The earliest schedule of the route's order (PyVRP's own may start late and arrive at the end
        # of a window; a customer is better served early, and the earliest is feasible when any is).
        clock = vehicle_types[kind].tw_early
        for activity in route.schedule():
            if not activity.is_client():
                continue
            c = activity.idx
            j = int(day.routed[c])
            node = n_tech + c
            clock = max(clock + int(day.seconds[previous, node]), clients[c].tw_early)
            arrival = day.origin + float(clock)
            clock += clients[c].service_duration
            leg = float(day.km[previous, node])
            assignments.append(Assignment(jobs[j].job_id, techs[t].technician_id, sequence, arrival, leg))
            served.add(j)
            previous, sequence = node, sequence + 1
        home_km += float(day.km[previous, day.ends[t]]) if previous != t else 0.0
    plan = Plan(
        assignments=assignments,
        unassigned=leftover(day.problem, day.elig, served),
        status=Status.FEASIBLE,
        objective=math.nan,
        solve_ms=(time.perf_counter() - started) * 1000.0,
        travel_km=float(sum(a.travel_km for a in assignments)) + home_km,
    )
    return with_objective(day.problem, day.elig, plan)
