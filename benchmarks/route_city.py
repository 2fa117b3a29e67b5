"""City-scale ROUTE days: 5,000 jobs and 1,000 technicians (and 2,000 × 400) with skills, tiers, shifts
and arrival windows, within a 60 s limit (`python -m benchmarks.route_city [--sizes 5000x1000]`).

Shifu solves them as the service does (two solver processes, the day split into regions, repaired
across borders). Beside it, on the same day: the previous ROUTE path (one OR-Tools model of the whole
day, as Shifu did before regions; it refused days over 5,000 locations), and PyVRP on the whole day
where its model can hold it. With skills the
technicians form hundreds of routing profiles, each a full matrix, which no machine here holds; so the
comparison with PyVRP is also made on the same day simplified to one profile (every technician
qualified, one shift, no vehicle limit, travel and drops only: 36 M cells). Every plan is checked by
the same code: windows, shifts, skills, vehicle, count.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from concurrent import futures

from benchmarks.dispatch_city import city
from models.dispatch import eligibility, route_hgs, route_plan
from models.dispatch import problem as dp
from models.dispatch.route import run
from models.dispatch.route_engines import SEARCHES
from models.dispatch.solver import solve

SLACK_S = 1.0
PREVIOUS_LIMIT = 5000  # locations the ROUTE path took before regions


def check(problem: dp.Problem, plan: dp.Plan) -> list[str]:
    """What the plan breaks, recomputed from the problem alone."""
    jobs = {j.job_id: j for j in problem.jobs}
    techs = {t.technician_id: t for t in problem.technicians}
    problems = []
    seen = [a.job_id for a in plan.assignments] + [u.job_id for u in plan.unassigned]
    if sorted(seen) != sorted(jobs):
        problems.append("not every job exactly once")
    by_tech: dict[str, list[dp.Assignment]] = {}
    for a in plan.assignments:
        by_tech.setdefault(a.technician_id, []).append(a)
    for tech_id, stops in by_tech.items():
        tech = techs[tech_id]
        if tech.max_jobs and len(stops) + tech.assigned_jobs > tech.max_jobs:
            problems.append(f"{tech_id}: over max_jobs")
        if tech.vehicle_capacity and sum(jobs[a.job_id].demand for a in stops) > tech.vehicle_capacity + 1e-9:
            problems.append(f"{tech_id}: over capacity")
        for a in stops:
            job = jobs[a.job_id]
            if not job.required_skills <= tech.skills:
                problems.append(f"{a.job_id}: lacks a skill")
            if a.arrival is None:
                continue
            if job.window and not job.window.start - SLACK_S <= a.arrival <= job.latest_start() + SLACK_S:
                problems.append(f"{a.job_id}: arrives outside its window")
            if tech.shift and a.arrival + 60 * job.duration_minutes > tech.shift.end + SLACK_S:
                problems.append(f"{a.job_id}: ends after the shift")
    return problems


def simplified(problem: dp.Problem) -> dp.Problem:
    """The same jobs and homes with what makes routing profiles taken away, so that PyVRP can hold the
    whole day in one matrix: every technician qualified, one shift for all, no vehicle limit, and only
    travel and drop penalties priced."""
    skills = frozenset().union(*(j.required_skills for j in problem.jobs))
    shifts = [t.shift for t in problem.technicians if t.shift]
    shift = dp.Window(min(w.start for w in shifts), max(w.end for w in shifts)) if shifts else None
    techs = tuple(
        dataclasses.replace(t, skills=skills, shift=shift, vehicle_capacity=0.0) for t in problem.technicians
    )
    weights = dataclasses.replace(problem.options.weights, tier=0.0, balance=0.0)
    options = dataclasses.replace(problem.options, weights=weights, max_radius_km=None)
    return dataclasses.replace(problem, technicians=techs, options=options)


def shifu(problem: dp.Problem) -> tuple[dp.Plan, float]:
    with futures.ProcessPoolExecutor(1) as a, futures.ProcessPoolExecutor(1) as b:
        started = time.perf_counter()
        plan = solve(problem, (a, b))
        return plan, time.perf_counter() - started


def whole_or_tools(problem: dp.Problem) -> tuple[dp.Plan | None, float]:
    """The ROUTE path before regions: one OR-Tools model of the whole day."""
    started = time.perf_counter()
    elig = eligibility.compute(problem)
    try:
        plan = run(problem, elig, SEARCHES[0], time.time() + problem.options.time_limit_s)
    except MemoryError:
        return None, time.perf_counter() - started
    return plan, time.perf_counter() - started


def whole_pyvrp(problem: dp.Problem) -> tuple[dp.Plan | None, float]:
    """PyVRP's search on the whole day, through the same mapping Shifu uses, when the day is one
    routing profile (every technician alike); None otherwise."""
    started = time.perf_counter()
    elig = eligibility.compute(problem)
    groups = route_hgs.profiles(problem, elig, cells=math.inf)
    if groups is None or int(groups.max()) > 0:
        return None, time.perf_counter() - started
    deadline = time.time() + problem.options.time_limit_s
    return route_hgs.solve(problem, elig, deadline, seed=1, cells=math.inf), time.perf_counter() - started


def row(name: str, problem: dp.Problem, plan: dp.Plan | None, seconds: float) -> str:
    if plan is None:
        return f"{name:<44}{'—':>9}{'—':>9}{'—':>12}{'—':>14}{seconds:>8.1f}  could not take the day"
    elig = eligibility.compute(problem)
    objective = route_plan.objective(problem, elig, plan)
    broken = check(problem, plan)
    verdict = "ok" if not broken else f"{len(broken)} problems, e.g. {broken[0]}"
    return (
        f"{name:<44}{len(plan.assignments):>9}{len(plan.unassigned):>9}{plan.travel_km:>12.1f}"
        f"{objective:>14.1f}{seconds:>8.1f}  {verdict}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.route_city", description=__doc__)
    parser.add_argument("--sizes", default="5000x1000,2000x400", help="JOBSxTECHNICIANS, comma-separated")
    parser.add_argument("--time-limit-s", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    header = f"{'':<44}{'assigned':>9}{'left out':>9}{'km':>12}{'objective':>14}{'s':>8}  check"
    for size in args.sizes.split(","):
        n_jobs, n_techs = (int(x) for x in size.lower().split("x"))
        day = city(n_jobs, n_techs, args.seed, windows=True)
        options = dataclasses.replace(day.options, mode=dp.Mode.ROUTE, time_limit_s=args.time_limit_s)
        day = dataclasses.replace(day, options=options)
        variants = (
            ("skills, tiers, shifts, vehicles", day),
            ("simplified: one routing profile", simplified(day)),
        )
        for title, problem in variants:
            print(f"{n_jobs} jobs, {n_techs} technicians, {title}, ROUTE, {args.time_limit_s:g} s limit")
            print(header)
            print(row("Shifu (regions, two processes)", problem, *shifu(problem)))
            if n_jobs + n_techs <= PREVIOUS_LIMIT:
                print(row("previous Shifu (one OR-Tools model)", problem, *whole_or_tools(problem)))
            else:
                print(
                    f"{'previous Shifu (one OR-Tools model)':<44}refused: over {PREVIOUS_LIMIT:,} locations"
                )
            plan, seconds = whole_pyvrp(problem)
            name = "PyVRP 0.14 on the whole day (one process)"
            print(
                row(name, problem, plan, seconds) if plan else f"{name:<44}cannot hold its routing profiles"
            )


if __name__ == "__main__":
    main()
