"""ROUTE mode: a day plan per technician.

Which searches a day gets is models/dispatch/route_engines.py's choice (PyVRP's hybrid genetic search
in models/dispatch/route_hgs.py, OR-Tools' searches below, OR-Tools polished by PyVRP, a re-plan from
its plan and from scratch); a city-scale day is split into regions first (models/dispatch/regions.py).
Every plan is compared on Shifu's objective (route_plan.py).

The OR-Tools model: one vehicle per technician, starting at its location and ending there or at its end
location, its shift as the vehicle's time window. Dimensions: time (travel plus time on site, waiting
allowed, each job started within its window), load (`demand` against `vehicle_capacity`) and count
(`max_jobs`). A job may only go to the technicians the eligibility checks allow (skills, vehicle
capacity, radius, its window reachable within the shift), a pinned job only to its technician; leaving a
job out costs its drop penalty (a disjunction). Arc costs are travel, plus the tier term of the job
entered, with one cost matrix per tier. The balance term is priced by the busiest technician's job count
(a global span).
The searches (route_engines.SEARCHES): local cheapest insertion improved by guided local search, and
beside it savings improved by tabu search (technicians alike) or parallel cheapest insertion improved
by guided local search (technicians differing); on days of up to 200 jobs each gets 30% of the time
limit, then ruin and recreate (remove a cluster of nearby jobs, let the local search put them back)
improves its best plan for the rest.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from concurrent import futures
from dataclasses import replace

import numpy as np
from ortools.constraint_solver import pywrapcp

from models.dispatch import day_routes, eligibility, regions, route_hgs, ruin_recreate
from models.dispatch.eligibility import Eligibility
from models.dispatch.problem import (
    COST_SCALE,
    Assignment,
    Plan,
    Problem,
    Status,
)
from models.dispatch.route_engines import (
    POLISH_SHARE,
    SEARCHES,
    Engine,
    Fresh,
    Hgs,
    Polished,
    Search,
    engines,
)
from models.dispatch.route_plan import (
    current_days,
    leftover,
    replanning,
    time_frame,
    with_objective,
)
from models.dispatch.travel import end_nodes, travel

LOAD_SCALE = 100  # integer loads: 1/100 of a demand unit
# On days of up to RUIN_RECREATE_MAX_JOBS jobs the metaheuristic gets METAHEURISTIC_SHARE of the time
# and ruin and recreate the rest (Solomon, 100 jobs: median gap 0.6% against 3.0%); on larger days each
# repair takes long and the metaheuristic keeps the whole time (a generated 400-job day at 5 s:
# objective 60,820 with guided local search alone against 73,006 with ruin and recreate after it).
RUIN_RECREATE_MAX_JOBS = 200
METAHEURISTIC_SHARE = 0.3
# A search still running this long after its deadline is taken to hang.
HANG_MARGIN_S = 30.0
# How long past the deadline the portfolio waits for its other search (OR-Tools' searches overrun their
# limit, by up to a second on a 300-job day, measured): 2% of the limit + 20 ms.
LATE_SHARE, LATE_S = 0.02, 0.02
# Guided local search checks its time limit between neighbourhood scans, which take longer the larger
# the day (measured: 0.5-0.7 s past a 2 s limit on a 300-job, 80-technician day): on days above
# RUIN_RECREATE_MAX_JOBS it is given the remaining time less this much per location.
OVERRUN_S_PER_LOCATION = 0.0015
log = logging.getLogger(__name__)


def solve_route(problem: Problem, elig: Eligibility) -> Plan:
    """The first engine in this process, with the whole time limit (a city-scale day region by region)."""
    if regions.should_split(problem):
        return regions.solve(problem, (), solve_region)
    return run(problem, elig, engines(problem, elig)[0], time.time() + problem.options.time_limit_s)


def solve_route_portfolio(problem: Problem, executors: Sequence[futures.Executor]) -> Plan:
    """The better of two searches (`engines`), each in its own executor (the service passes worker
    processes, one per core), by Shifu's objective. A search that fails leaves the other's plan
    standing; only when both fail does the call fail, with the first search's error."""
    if regions.should_split(problem):
        return regions.solve(problem, executors, solve_region)
    limit = problem.options.time_limit_s
    deadline = time.time() + limit
    elig = eligibility.compute(problem)
    pending = [
        executor.submit(search_alone, problem, engine, deadline)
        for executor, engine in zip(executors, engines(problem, elig), strict=False)
    ]
    # The limit covers the call: a search that overruns it is left behind (the caller's executors
    # stop it), unless no search has answered with a plan yet: then the first plan that places jobs.
    done, late = futures.wait(pending, timeout=max(0.0, deadline - time.time()) + LATE_SHARE * limit + LATE_S)
    while late and not any(_places_jobs(f) for f in done):
        more, late = futures.wait(late, timeout=HANG_MARGIN_S, return_when=futures.FIRST_COMPLETED)
        if not more:
            break
        done |= more
    if late:
        log.info("%d route search(es) overran the time limit and were left behind", len(late))
    plans: list[Plan] = []
    errors: list[BaseException] = []
    for future in done:
        try:
            plans.append(future.result())
        except Exception as error:
            log.warning("a route search failed: %r", error)
            errors.append(error)
    if not plans:
        raise errors[0] if errors else TimeoutError("no route search answered")
    found = [p for p in plans if p.status is not Status.NO_SOLUTION]
    return min(found, key=lambda p: p.objective) if found else plans[0]


def _places_jobs(future: futures.Future) -> bool:
    return future.exception() is None and bool(future.result().assignments)


def search_alone(problem: Problem, engine: Engine, deadline: float) -> Plan:
    """One search from scratch (eligibility included), as a worker process runs it."""
    return run(problem, eligibility.compute(problem), engine, deadline)


def solve_region(problem: Problem, seconds: float, deadline: float) -> Plan:
    """One region of a city-scale day (regions.py), as a worker runs it: its best engine for `seconds`
    from when it starts, not past `deadline`."""
    elig = eligibility.compute(problem)
    return run(problem, elig, engines(problem, elig)[0], min(time.time() + seconds, deadline))


def run(problem: Problem, elig: Eligibility, engine: Engine, deadline: float, warm: bool = True) -> Plan:
    """The engine's plan, finished and priced; with `warm`, a re-plan's search starts from the plan it
    replaces."""
    if isinstance(engine, Fresh):
        return run(problem, elig, engine.engine, deadline, warm=False)
    if isinstance(engine, Polished):
        return _polished(problem, elig, engine.seed, deadline, warm)
    if isinstance(engine, Hgs):
        return _finished(problem, elig, route_hgs.solve(problem, elig, deadline, engine.seed, warm=warm))
    return _finished(problem, elig, _search(problem, elig, engine, deadline, warm))


def _finished(problem: Problem, elig: Eligibility, plan: Plan) -> Plan:
    """A search's plan read whole (day_routes.finish) and priced on Shifu's objective."""
    if plan.status is Status.NO_SOLUTION:
        return plan
    return with_objective(problem, elig, day_routes.finish(problem, elig, plan))


def _polished(problem: Problem, elig: Eligibility, seed: int, deadline: float, warm: bool) -> Plan:
    """OR-Tools' first search for POLISH_SHARE of the time, then PyVRP's from its plan (from scratch
    when OR-Tools placed nothing); the better plan, timed from the start."""
    started = time.perf_counter()
    share = POLISH_SHARE * max(0.0, deadline - time.time())
    first = run(problem, elig, SEARCHES[0], time.time() + share, warm)
    start = first if first.assignments else None
    second = _finished(problem, elig, route_hgs.solve(problem, elig, deadline, seed, start=start, warm=warm))
    found = [p for p in (first, second) if p.status is not Status.NO_SOLUTION]
    best = min(found, key=lambda p: p.objective) if found else first
    return replace(best, solve_ms=(time.perf_counter() - started) * 1000.0)


def _search(problem: Problem, elig: Eligibility, search: Search, deadline: float, warm: bool) -> Plan:
    started = time.perf_counter()
    jobs, techs = problem.jobs, problem.technicians
    if not jobs or not techs or len(elig.reasons) == len(jobs):
        # OR-Tools aborts the process on a routing model without vehicles; with nothing to route there
        # is nothing to search either: every job keeps the reason eligibility gave it.
        return _nothing_to_route(problem, elig, started)
    n_tech, n_jobs = len(techs), len(jobs)
    n_nodes = n_tech + n_jobs
    weights = problem.options.weights
    origin, horizon = time_frame(problem)

    # A technician's node is where its route starts and ends: its row leaves from `location`, its
    # column arrives where the day ends (the end location, when it has one). No other vehicle visits
    # it, so one node serves both (a node per end location made OR-Tools refuse a re-plan's start on
    # the demo's lunch day in 0.1 s, 4 times in 6).
    km, minutes = travel(
        problem, np.arange(n_nodes), np.concatenate([end_nodes(problem), n_tech + np.arange(n_jobs)])
    )
    duration = np.concatenate([np.zeros(n_tech), [j.duration_minutes for j in jobs]])
    transit = np.ceil((minutes + duration[:, None]) * 60.0).astype(np.int64)
    np.fill_diagonal(transit, 0)

    manager = pywrapcp.RoutingIndexManager(n_nodes, n_tech, list(range(n_tech)), list(range(n_tech)))
    routing = pywrapcp.RoutingModel(manager)

    time_callback = routing.RegisterTransitMatrix(transit.tolist())
    routing.AddDimension(time_callback, horizon, horizon, False, "time")
    time_dimension = routing.GetDimensionOrDie("time")

    travel_cost = np.rint(weights.travel_per_km * km * COST_SCALE).astype(np.int64)
    entering_job = np.concatenate([np.zeros(n_tech), np.ones(n_jobs)])
    # Arc costs: travel plus what entering the job costs the vehicle (tier and reassignment terms); one
    # matrix per group of technicians with the same entry costs.
    for members in _alike(elig.entry_cost).values():
        entry = np.concatenate([np.zeros(n_tech), elig.entry_cost[:, members[0]]]) * COST_SCALE
        callback = routing.RegisterTransitMatrix(
            (travel_cost + np.rint(entry).astype(np.int64)[None, :]).tolist()
        )
        for v in members:
            routing.SetArcCostEvaluatorOfVehicle(callback, v)

    demand = np.concatenate([np.zeros(n_tech), [j.demand for j in jobs]])
    load_callback = routing.RegisterUnaryTransitVector(np.rint(demand * LOAD_SCALE).astype(np.int64).tolist())
    total_load = int(np.rint(demand.sum() * LOAD_SCALE)) + 1
    capacities = [
        int(np.rint(t.vehicle_capacity * LOAD_SCALE)) if t.vehicle_capacity else total_load for t in techs
    ]
    routing.AddDimensionWithVehicleCapacity(load_callback, 0, capacities, True, "load")

    count_callback = routing.RegisterUnaryTransitVector(entering_job.astype(np.int64).tolist())
    routing.AddDimensionWithVehicleCapacity(
        count_callback, 0, elig.capacity.astype(int).tolist(), True, "count"
    )
    count_dimension = routing.GetDimensionOrDie("count")
    count_dimension.SetGlobalSpanCostCoefficient(int(weights.balance * COST_SCALE))

    for v, tech in enumerate(techs):
        lo, hi = (0, horizon)
        if tech.shift:
            lo = max(0, math.ceil(tech.shift.start - origin))
            hi = min(horizon, math.floor(tech.shift.end - origin))
        time_dimension.CumulVar(routing.Start(v)).SetRange(lo, max(lo, hi))
        time_dimension.CumulVar(routing.End(v)).SetRange(lo, max(lo, hi))
    _plan_breaks(routing, manager, time_dimension, problem, origin)

    for j, job in enumerate(jobs):
        index = manager.NodeToIndex(n_tech + j)
        allowed = np.flatnonzero(elig.feasible[j]).tolist()
        if j in elig.reasons or not allowed:
            routing.solver().Add(routing.ActiveVar(index) == 0)
            routing.AddDisjunction([index], 0)
            continue
        if len(allowed) < n_tech:  # -1: the job may also be left out (its disjunction prices that)
            routing.VehicleVar(index).SetValues([-1, *allowed])
        routing.AddDisjunction([index], int(min(elig.drop_penalty[j] * COST_SCALE, 2**62)))
        if job.window:
            start = max(0, math.ceil(job.window.start - origin))
            latest = math.floor(job.latest_start() - origin)
            time_dimension.CumulVar(index).SetRange(start, max(start, min(latest, horizon)))

    job_indices = np.array([manager.NodeToIndex(n_tech + j) for j in range(n_jobs)], dtype=np.int64)
    current = (
        [[int(job_indices[j]) for j in day] for day in current_days(problem, elig)]
        if warm and replanning(problem)
        else None
    )
    solution = _solve(
        routing, search, deadline, job_indices, km[n_tech:, n_tech:], SEARCHES.index(search), current
    )
    if solution is None:
        return Plan([], list(elig.reasons.values()), Status.NO_SOLUTION, math.nan,
                    (time.perf_counter() - started) * 1000, 0.0)  # fmt: skip
    return _plan(problem, elig, manager, routing, solution, km, origin, started)


def _alike(entry_cost: np.ndarray) -> dict[bytes, list[int]]:
    """Technicians (columns) grouped by identical entry costs, in order."""
    groups: dict[bytes, list[int]] = {}
    for v in range(entry_cost.shape[1]):
        groups.setdefault(np.ascontiguousarray(entry_cost[:, v]).tobytes(), []).append(v)
    return groups


def _plan_breaks(
    routing: pywrapcp.RoutingModel,
    manager: pywrapcp.RoutingIndexManager,
    time_dimension: pywrapcp.RoutingDimension,
    problem: Problem,
    origin: float,
) -> None:
    """Each technician's breaks as intervals of its time dimension, outside the time on site: OR-Tools
    may also put one inside a drive, which day_routes.finish then does not accept."""
    if not any(t.breaks for t in problem.technicians):
        return
    n_tech = len(problem.technicians)
    on_site = [
        0
        if manager.IndexToNode(i) < n_tech
        else math.ceil(60 * problem.jobs[manager.IndexToNode(i) - n_tech].duration_minutes)
        for i in range(routing.Size())
    ]
    solver = routing.solver()
    for v, tech in enumerate(problem.technicians):
        intervals = [
            solver.FixedDurationIntervalVar(
                max(0, math.ceil(pause.window.start - origin)),
                max(0, math.floor(pause.window.end - origin)),
                math.ceil(60 * pause.duration_minutes),
                False,
                f"break {b} of {tech.technician_id}",
            )
            for b, pause in enumerate(sorted(tech.breaks, key=lambda p: (p.window.start, p.window.end)))
        ]
        if intervals:
            time_dimension.SetBreakIntervalsOfVehicle(intervals, v, on_site)


def _nothing_to_route(problem: Problem, elig: Eligibility, started: float) -> Plan:
    unassigned = [elig.reasons[j] for j in sorted(elig.reasons)]
    return Plan(
        assignments=[],
        unassigned=unassigned,
        status=Status.OPTIMAL,
        objective=float(sum(elig.drop_penalty[j] for j in elig.reasons)),
        solve_ms=(time.perf_counter() - started) * 1000.0,
        travel_km=0.0,
        bound=float(sum(elig.drop_penalty[j] for j in elig.reasons)),
    )


def _solve(
    routing: pywrapcp.RoutingModel,
    search: Search,
    deadline: float,
    jobs: np.ndarray,
    km: np.ndarray,
    seed: int,
    current: list[list[int]] | None = None,
) -> pywrapcp.Assignment | None:
    """The search's first solution and metaheuristic, then ruin and recreate until `deadline`; `jobs`
    are the jobs' routing indices, `km` the jobs × jobs distances. `current`: each vehicle's route of
    the plan being replaced (routing indices), where the search starts instead of from nothing."""
    parameters = pywrapcp.DefaultRoutingSearchParameters()
    parameters.first_solution_strategy, parameters.local_search_metaheuristic = search
    seconds = deadline - time.time()
    if jobs.size <= RUIN_RECREATE_MAX_JOBS:
        seconds *= METAHEURISTIC_SHARE  # ruin and recreate, which keeps to the deadline, has the rest
    else:
        seconds = max(0.5 * seconds, seconds - OVERRUN_S_PER_LOCATION * routing.Size())
    parameters.time_limit.FromMilliseconds(max(1, int(seconds * 1000)))
    solution = None
    if current is not None:
        routing.CloseModelWithParameters(parameters)
        start = routing.solver().Assignment()
        # The routes as next-variables only (ReadAssignmentFromRoutes would spend the time limit on a
        # search to fill in the rest): the search below completes and improves them.
        if routing.RoutesToAssignment(current, True, True, start):
            solution = routing.SolveFromAssignmentWithParameters(start, parameters)
    if solution is None:
        solution = routing.SolveWithParameters(parameters)
    if solution is None:
        return None
    return ruin_recreate.improve(routing, solution, jobs, km, deadline, seed)


def _plan(
    problem: Problem,
    elig: Eligibility,
    manager: pywrapcp.RoutingIndexManager,
    routing: pywrapcp.RoutingModel,
    solution: pywrapcp.Assignment,
    km: np.ndarray,
    origin: float,
    started: float,
) -> Plan:
    jobs, techs = problem.jobs, problem.technicians
    n_tech = len(techs)
    time_dimension = routing.GetDimensionOrDie("time")
    assignments, served, home_km = [], set(), 0.0
    for v, tech in enumerate(techs):
        index, previous, sequence = solution.Value(routing.NextVar(routing.Start(v))), v, 0
        while not routing.IsEnd(index):
            node = manager.IndexToNode(index)
            j = node - n_tech
            arrival = origin + float(solution.Min(time_dimension.CumulVar(index)))

            assignments.append(
                Assignment(jobs[j].job_id, tech.technician_id, sequence, arrival, float(km[previous, node]))
            )
            served.add(j)
            previous, sequence = node, sequence + 1
            index = solution.Value(routing.NextVar(index))
        home_km += float(km[previous, v]) if previous != v else 0.0  # column v: where the day ends
    unassigned = leftover(problem, elig, served)
    return Plan(
        assignments=assignments,
        unassigned=unassigned,
        status=Status.FEASIBLE,
        objective=solution.ObjectiveValue() / COST_SCALE,
        solve_ms=(time.perf_counter() - started) * 1000.0,
        travel_km=float(sum(a.travel_km for a in assignments)) + home_km,  # with the way home
    )
