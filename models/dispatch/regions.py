"""City-scale ROUTE days: regions solved apart, side by side, then joined and repaired across borders.

A day of thousands of locations is too large for one routing model (one matrix of 6,000 × 6,000 locations
per profile, a search whose every neighbourhood scan takes seconds), yet a technician's day is local:
nobody crosses the city for a 60-minute job. So the jobs are clustered by place (k-means on their
coordinates, about JOBS_PER_REGION each), every technician joins the region nearest home (then the
nearest technicians move from regions with spare capacity to regions short of it), and each
region is an ordinary ROUTE day (PyVRP's search where it maps, else OR-Tools), solved in the
executors given (the service's solver processes) with a share of the time by its size. Jobs a region
could not place (no qualified technician there, or no room) are then inserted, cheapest first, into
the routes of any qualified technician where their windows, the shift, the vehicle and `max_jobs`
allow and the detour costs less than leaving them out.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent import futures

import numpy as np

from models.dispatch import day_routes, eligibility
from models.dispatch.eligibility import Eligibility, remaining_capacity
from models.dispatch.problem import Assignment, Plan, Problem, Status, n_locations
from models.dispatch.route_plan import leftover, with_objective
from models.dispatch.travel import cut, end_nodes, legs, locations

log = logging.getLogger(__name__)

SPLIT_ABOVE_LOCATIONS = 2000  # days with more jobs and technicians together are split into regions
JOBS_PER_REGION = 400
TECHNICIANS_PER_JOB = 2  # a region keeps at most this many technicians per job (the nearest to it)
JOBS_A_DAY = 8  # what a technician without a max_jobs counts for when regions are balanced
KMEANS_ITERATIONS = 20
REPAIR_CANDIDATES = 40  # technicians tried per left-out job, the nearest qualified ones
REPAIR_SHARE = 0.04  # of the time limit, kept for joining the regions and repairing across borders


@dataclasses.dataclass(frozen=True)
class Region:
    jobs: np.ndarray  # job indices of the whole problem
    technicians: np.ndarray  # technician indices


def should_split(problem: Problem) -> bool:
    return len(problem.jobs) + len(problem.technicians) > SPLIT_ABOVE_LOCATIONS and len(problem.jobs) > 1


def split(problem: Problem, seed: int = 0) -> list[Region]:
    """Regions of nearby jobs, each with the technicians who live nearest to it."""
    jobs = np.array([(j.location.lat, j.location.lng) for j in problem.jobs])
    homes = np.array([(t.location.lat, t.location.lng) for t in problem.technicians])
    # Degrees of longitude shrink with latitude: scale them so that distances are roughly isotropic.
    scale = np.array([1.0, math.cos(math.radians(float(jobs[:, 0].mean())))])
    points, home_points = jobs * scale, homes * scale
    k = max(1, math.ceil(len(problem.jobs) / JOBS_PER_REGION))
    centres = _spread_centres(points, k, np.random.default_rng(seed))
    for _ in range(KMEANS_ITERATIONS):
        nearest = _nearest(points, centres)
        for c in range(k):
            members = points[nearest == c]
            if members.size:
                centres[c] = members.mean(axis=0)
    of_job, of_tech = _nearest(points, centres), _nearest(home_points, centres)
    supply = np.minimum(remaining_capacity(problem), JOBS_A_DAY).astype(float)
    of_tech = _balance(of_tech, np.bincount(of_job, minlength=k).astype(float), supply, home_points, centres)
    regions = []
    for c in range(k):
        mine, theirs = np.flatnonzero(of_job == c), np.flatnonzero(of_tech == c)
        keep = max(TECHNICIANS_PER_JOB * mine.size, 1)
        if theirs.size > keep:  # far more technicians than work: the nearest ones (the rest stay free)
            gap = ((home_points[theirs] - centres[c]) ** 2).sum(axis=1)
            theirs = np.sort(theirs[np.argsort(gap, kind="stable")[:keep]])
        if mine.size and theirs.size:
            regions.append(Region(mine, theirs))
    return regions


def _balance(
    of_tech: np.ndarray, demand: np.ndarray, supply: np.ndarray, homes: np.ndarray, centres: np.ndarray
) -> np.ndarray:
    """Technicians moved from regions with more capacity than their share of the work to the regions
    with less, the nearest one to the short region each time, until no region is short by more than one
    technician's day: a region's own technicians can then take its jobs, and the repair is left with the
    few that still do not fit."""
    of_tech = of_tech.copy()
    k = len(centres)
    share = supply.sum() / max(demand.sum(), 1.0)
    for _ in range(len(of_tech)):
        surplus = np.bincount(of_tech, weights=supply, minlength=k) - demand * share
        short = int(np.argmin(surplus))
        if -surplus[short] <= supply.mean():
            break
        movable = np.flatnonzero((surplus[of_tech] >= supply) & (of_tech != short))
        if not movable.size:
            break
        nearest = movable[np.argmin(((homes[movable] - centres[short]) ** 2).sum(axis=1))]
        of_tech[nearest] = short
    return of_tech


def _spread_centres(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each next centre drawn with probability by its squared distance to the
    nearest centre so far, so that separate parts of a city each get one."""
    centres = [points[rng.integers(len(points))]]
    gap = ((points - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = gap.sum()
        chosen = rng.choice(len(points), p=gap / total) if total > 0 else rng.integers(len(points))
        centres.append(points[chosen])
        gap = np.minimum(gap, ((points - points[chosen]) ** 2).sum(axis=1))
    return np.array(centres, dtype=float)


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = (points**2).sum(axis=1)[:, None] - 2 * points @ centres.T + (centres**2).sum(axis=1)[None, :]
    return np.argmin(d, axis=1)


def subproblem(problem: Problem, region: Region) -> Problem:
    """The region as a day of its own (the request's matrices cut to its locations)."""
    n_tech = len(problem.technicians)
    ends = end_nodes(problem)[region.technicians]
    own_end = np.array(
        [problem.technicians[t].end_location is not None for t in region.technicians], dtype=bool
    )
    nodes = np.concatenate([region.technicians, n_tech + region.jobs, ends[own_end]])
    return Problem(
        tuple(problem.jobs[j] for j in region.jobs),
        tuple(problem.technicians[t] for t in region.technicians),
        cut(problem.options, n_locations(problem), nodes),
    )


# How a region is searched (route.solve_region, which picks its engine): the region's day, the seconds it
# gets from when it starts and the Unix time it must not pass. A parameter, not an import, so that this
# module depends on nothing above it (route.py, the entry point, calls it); a function at a module's top
# level, so that a worker process can be sent it.
RegionSolver = Callable[[Problem, float, float], Plan]


def solve(problem: Problem, executors: Sequence[futures.Executor], solve_region: RegionSolver) -> Plan:
    started = time.perf_counter()
    limit = problem.options.time_limit_s
    deadline = time.time() + limit
    elig = eligibility.compute(problem)
    regions = split(problem)
    solve_until = deadline - REPAIR_SHARE * limit
    # Longest first, each to the executor with the least work so far; a region's time is its share of
    # the time the executors have together.
    lanes = max(1, len(executors))
    sizes = np.array([r.jobs.size for r in regions], dtype=float)
    available = max(0.1, solve_until - time.time()) * lanes
    work = [0.0] * lanes
    pending = []
    for r in np.argsort(-sizes, kind="stable").tolist():
        seconds = available * sizes[r] / sizes.sum()
        lane = int(np.argmin(work))
        work[lane] += seconds
        sub = subproblem(problem, regions[r])
        if executors:
            pending.append(executors[lane].submit(solve_region, sub, seconds, solve_until))
        else:
            pending.append(_done(solve_region(sub, seconds / lanes, solve_until)))
    routes: dict[int, list[int]] = {t: [] for t in range(len(problem.technicians))}
    job_index = {job.job_id: j for j, job in enumerate(problem.jobs)}
    tech_index = {t.technician_id: i for i, t in enumerate(problem.technicians)}
    for future in futures.as_completed(pending, timeout=max(1.0, deadline - time.time()) + 30.0):
        try:
            plan = future.result()
        except Exception as error:  # a region that failed leaves its jobs to the repair, not the call
            log.warning("a region's search failed: %r", error)
            continue
        for a in sorted(plan.assignments, key=lambda a: (a.technician_id, a.sequence)):
            routes[tech_index[a.technician_id]].append(job_index[a.job_id])
    repair(problem, elig, routes, deadline)
    return _plan(problem, elig, routes, started)


def _done(plan: Plan) -> futures.Future:
    future: futures.Future = futures.Future()
    future.set_result(plan)
    return future


class _Day:
    """Routes of the whole day, with what it takes to check and price an insertion."""

    def __init__(self, problem: Problem, elig: Eligibility) -> None:
        self.problem, self.elig = problem, elig
        self.n_tech = len(problem.technicians)
        self.demand = np.array([j.demand for j in problem.jobs])
        self.points = locations(problem)
        self.ends = end_nodes(problem)

    def legs(self, t: int, route: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(km, seconds) of each leg: home → first job → … → last job → where the day ends."""
        nodes = np.array([t, *(self.n_tech + j for j in route), self.ends[t]])
        km, minutes = legs(self.problem, self.points, nodes[:-1], nodes[1:])
        return km, 60.0 * minutes

    def fits(self, t: int, route: list[int]) -> bool:
        tech = self.problem.technicians[t]
        if len(route) > self.elig.capacity[t]:
            return False
        if tech.vehicle_capacity and self.demand[route].sum() > tech.vehicle_capacity + 1e-9:
            return False
        return day_routes.schedule_of(self.problem, self.points, t, route, home=True) is not None


def repair(problem: Problem, elig: Eligibility, routes: dict[int, list[int]], deadline: float) -> None:
    """Puts the jobs no region placed into the cheapest feasible place of a qualified technician's route,
    when that costs less than leaving them out; the most valuable jobs first."""
    day = _Day(problem, elig)
    placed = {j for route in routes.values() for j in route}
    waiting = [j for j in range(len(problem.jobs)) if j not in placed and j not in elig.reasons]
    waiting.sort(key=lambda j: -elig.drop_penalty[j])
    per_km = problem.options.weights.travel_per_km
    for j in waiting:
        if time.time() > deadline:
            break
        qualified = np.flatnonzero(elig.feasible[j])
        nearest = qualified[np.argsort(elig.km[j, qualified], kind="stable")[:REPAIR_CANDIDATES]]
        best: tuple[float, int, int] | None = None
        for t in nearest.tolist():
            route = routes[t]
            if len(route) >= elig.capacity[t]:
                continue
            km_now, _ = day.legs(t, route)
            for at in range(len(route) + 1):
                trial = [*route[:at], j, *route[at:]]
                if not day.fits(t, trial):
                    continue
                km_trial, _ = day.legs(t, trial)
                cost = per_km * (km_trial.sum() - km_now.sum()) + float(elig.entry_cost[j, t])
                if best is None or cost < best[0]:
                    best = (cost, t, at)
        if best is not None and best[0] < elig.drop_penalty[j]:
            _, t, at = best
            routes[t].insert(at, j)


def _plan(problem: Problem, elig: Eligibility, routes: dict[int, list[int]], started: float) -> Plan:
    """The joined routes as a plan; their times, km and routes are read whole by day_routes.finish."""
    techs = problem.technicians
    assignments = [
        Assignment(problem.jobs[j].job_id, techs[t].technician_id, sequence, None, 0.0)
        for t, route in routes.items()
        for sequence, j in enumerate(route)
    ]
    served = {j for route in routes.values() for j in route}
    plan = Plan(
        assignments=assignments,
        unassigned=leftover(problem, elig, served),
        status=Status.FEASIBLE,
        objective=math.nan,
        solve_ms=(time.perf_counter() - started) * 1000.0,
        travel_km=0.0,
    )
    return with_objective(problem, elig, day_routes.finish(problem, elig, plan))
