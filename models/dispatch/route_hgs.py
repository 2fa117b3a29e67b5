"""ROUTE mode with PyVRP's hybrid genetic search (HGS), where the day maps onto PyVRP's model.

The mapping: every technician is a vehicle type of one vehicle starting and ending at a depot of its
own (its home), its shift the type's time window, its loads two dimensions (demand against
`vehicle_capacity`, one per job against `max_jobs − assigned_jobs`); every job a client that may be
left out for a prize (its drop penalty), its time window bounding the start of service (the arrival
window, `latest_start`), its duration the service time. Which technician may take which job
(skills, radius, capacity, pins: the eligibility matrix) and the tier term (per job entered, by the
technician's tier) become routing profiles: one matrix per group of technicians alike in both, with
arcs into the jobs they may not take made too long to use. A day whose profiles' matrices would
pass PROFILE_CELLS does not map and stays with OR-Tools (a city-scale day is split into regions first).

The balance term is not part of PyVRP's objective: the portfolio compares every plan on Shifu's own
objective (`objective`), so a plan that crowds one technician loses to one that does not.
PyVRP's data is integer: costs in 1/COST_UNITS of a currency unit, times in whole seconds.
"""

from __future__ import annotations

import math
import time

import numpy as np

from models.dispatch.eligibility import Eligibility
from models.dispatch.problem import TOP_TIER, Assignment, Plan, Problem, Status
from models.dispatch.route_plan import leftover, time_frame, with_objective
from models.dispatch.travel import travel

# Each routing profile is a full distance and a full duration matrix: this many cells in all at most
# (two int64 matrices of 8M cells: 128 MB).
PROFILE_CELLS = 8_000_000
COST_UNITS = 1000  # integer costs: a thousandth of a unit (a metre at 1 per km)
LOAD_SCALE = 100  # integer loads: 1/100 of a demand unit
# PyVRP stops at its time limit and the plan is read back in milliseconds; it is given the time left
# less this much so that the call keeps to its limit.
MARGIN_S = 0.05
MAX_PRIZE = 2.0**53  # integer costs stay exact in a double
PENALTY_FLOOR = 1e5  # PyVRP's default largest penalty
STALL_ITERATIONS = 100_000  # iterations without a better plan that end the search before its limit


def profiles(problem: Problem, elig: Eligibility, cells: float | None = None) -> np.ndarray | None:
    """Each technician's profile (technicians alike in the jobs they may take and, when the tier term
    counts, in tier), or None when their matrices would pass PROFILE_CELLS."""
    tiers = np.array([t.tier for t in problem.technicians])
    if problem.options.weights.tier == 0:
        tiers = np.zeros_like(tiers)
    keys = [elig.feasible[:, t].tobytes() + bytes([int(tiers[t])]) for t in range(len(problem.technicians))]
    distinct: dict[bytes, int] = {}
    of_tech = np.array([distinct.setdefault(key, len(distinct)) for key in keys], dtype=np.int64)
    nodes = len(problem.technicians) + len(problem.jobs)
    return of_tech if len(distinct) * nodes * nodes <= (PROFILE_CELLS if cells is None else cells) else None


def solve(
    problem: Problem, elig: Eligibility, deadline: float, seed: int, cells: float | None = None
) -> Plan:
    import pyvrp
    from pyvrp.stop import MaxRuntime, MultipleCriteria, NoImprovement

    started = time.perf_counter()
    groups = profiles(problem, elig, cells)
    if groups is None:
        raise ValueError(f"the technicians' routing profiles would pass {PROFILE_CELLS:,} matrix cells")
    jobs, techs = problem.jobs, problem.technicians
    n_tech = len(techs)
    routed = np.array(
        [j for j in range(len(jobs)) if j not in elig.reasons and elig.feasible[j].any()], dtype=np.int64
    )
    if not routed.size or not n_tech:
        return with_objective(
            problem, elig, Plan([], leftover(problem, elig, set()), Status.FEASIBLE, math.nan, 0.0, 0.0)
        )
    origin, horizon = time_frame(problem)
    nodes = np.concatenate([np.arange(n_tech), n_tech + routed]).astype(np.int64)
    km, minutes = travel(problem, nodes, nodes)
    weights = problem.options.weights

    travel_cost = np.rint(weights.travel_per_km * km * COST_UNITS).astype(np.int64)
    seconds = np.ceil(minutes * 60.0).astype(np.int64)
    too_far = 10 * horizon
    distances, durations = [], []
    for p in range(int(groups.max()) + 1):
        t = int(np.flatnonzero(groups == p)[0])
        distance, duration = travel_cost.copy(), seconds.copy()
        if weights.tier:
            priority = np.array([jobs[j].priority for j in routed], dtype=float)
            tier_cost = weights.tier * (TOP_TIER - techs[t].tier) * (priority + 1) * COST_UNITS
            distance[:, n_tech:] += np.rint(tier_cost).astype(np.int64)[None, :]
        barred = n_tech + np.flatnonzero(~elig.feasible[routed, t])
        distance[:, barred] = too_far
        duration[:, barred] = too_far
        np.fill_diagonal(distance, 0)  # staying put costs nothing, whatever is added to entering a job
        np.fill_diagonal(duration, 0)
        distances.append(distance)
        durations.append(duration)

    demand = np.rint(np.array([jobs[j].demand for j in routed]) * LOAD_SCALE).astype(np.int64)
    total_load = int(demand.sum()) + 1
    prizes = np.rint(np.minimum(elig.drop_penalty[routed] * COST_UNITS, MAX_PRIZE)).astype(np.int64)
    clients = []
    for c, j in enumerate(routed.tolist()):
        job = jobs[j]
        early, late = 0, horizon
        if job.window is not None:
            early = max(0, math.ceil(job.window.start - origin))
            late = max(early, min(horizon, math.floor(job.latest_start() - origin)))
        clients.append(
            pyvrp.Client(
                location=n_tech + c,
                delivery=[int(demand[c]), 1],
                service_duration=math.ceil(60.0 * job.duration_minutes),
                tw_early=early,
                tw_late=late,
                prize=int(prizes[c]),
                required=False,
            )
        )
    # Technicians alike in home, shift, vehicle, job count and profile are one vehicle type with that
    # many vehicles (a fleet at one depot is PyVRP's own model, which it searches best); homes in one
    # place are one depot.
    depot_of: dict[tuple[float, float], int] = {}
    depot_location: list[int] = []
    kinds: dict[tuple, list[int]] = {}
    for t, tech in enumerate(techs):
        home = (tech.location.lat, tech.location.lng)
        if home not in depot_of:
            depot_of[home] = len(depot_location)
            depot_location.append(t)
        early, late = 0, horizon
        if tech.shift is not None:
            early = max(0, math.ceil(tech.shift.start - origin))
            late = max(early, min(horizon, math.floor(tech.shift.end - origin)))
        capacity = int(np.rint(tech.vehicle_capacity * LOAD_SCALE)) if tech.vehicle_capacity else total_load
        alike = (depot_of[home], early, late, capacity, int(elig.capacity[t]), int(groups[t]))
        kinds.setdefault(alike, []).append(t)
    vehicle_types = [
        pyvrp.VehicleType(
            num_available=len(members),
            capacity=[capacity, count],
            start_depot=depot,
            end_depot=depot,
            tw_early=early,
            tw_late=late,
            profile=profile,
        )
        for (depot, early, late, capacity, count, profile), members in kinds.items()
    ]
    fleets = [list(members) for members in kinds.values()]  # the technicians each type's routes go to
    data = pyvrp.ProblemData(
        locations=[pyvrp.Location(0, 0) for _ in nodes],
        clients=clients,
        depots=[pyvrp.Depot(location=t) for t in depot_location],
        vehicle_types=vehicle_types,
        distance_matrices=distances,  # type: ignore[arg-type]
        duration_matrices=durations,  # type: ignore[arg-type]
    )
    budget = max(0.05, deadline - time.time() - MARGIN_S)
    # Penalties for excess load and lateness must be able to outgrow the prizes, or a plan that keeps
    # every job by overloading a technician looks better than one that leaves a job out.
    penalty = pyvrp.PenaltyParams(max_penalty=max(PENALTY_FLOOR, 10.0 * float(prizes.max(initial=0))))
    params = pyvrp.SolveParams(penalty=penalty)
    # Stopped by the clock, or by a long run without improvement: a small day then gets the same plan
    # every time, whatever the machine's speed.
    stop = MultipleCriteria([MaxRuntime(budget), NoImprovement(STALL_ITERATIONS)])
    best = pyvrp.solve(data, stop, seed=seed, params=params, display=False, collect_stats=False).best
    if not best.is_feasible():
        return Plan([], [elig.reasons[j] for j in sorted(elig.reasons)], Status.NO_SOLUTION, math.nan,
                    (time.perf_counter() - started) * 1000, 0.0)  # fmt: skip

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
            j = int(routed[c])
            node = n_tech + c
            clock = max(clock + int(seconds[previous, node]), clients[c].tw_early)
            arrival = origin + float(clock)
            clock += clients[c].service_duration
            leg = float(km[previous, node])
            assignments.append(Assignment(jobs[j].job_id, techs[t].technician_id, sequence, arrival, leg))
            served.add(j)
            previous, sequence = node, sequence + 1
        home_km += float(km[previous, t]) if previous != t else 0.0
    unassigned = leftover(problem, elig, served)
    plan = Plan(
        assignments=assignments,
        unassigned=unassigned,
        status=Status.FEASIBLE,
        objective=math.nan,
        solve_ms=(time.perf_counter() - started) * 1000.0,
        travel_km=float(sum(a.travel_km for a in assignments)) + home_km,
    )
    return with_objective(problem, elig, plan)
