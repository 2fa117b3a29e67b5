"""A generated city through the dispatch solver the RPC uses: exact ASSIGN against greedy, and scaling.

    python -m benchmarks.dispatch_city [--sizes 1000x300,10000x3000] [--seed 1] [--out FILE.json]

The city is the demo generator's dispatch day (8 skills, tiers 1-3, 3-6 jobs per technician, shifts;
the jobs' time windows only with --windows) at the requested size. The greedy baseline is what a
dispatcher without an optimizer does: jobs by priority, each to the nearest qualified technician with
room left.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from google.protobuf import json_format

from models.dispatch import eligibility
from models.dispatch import problem as dp
from models.dispatch.assign_flow import plan_from_assignment, solve_assign
from models.dispatch.solver import solve
from service.dispatch_handler import to_job, to_options, to_technician
from service.pb.shifu.v1 import dispatch_pb2 as pb
from training import demo


def city(n_jobs: int, n_technicians: int, seed: int, windows: bool) -> dp.Problem:
    size = demo.DemoSize(jobs=n_jobs, technicians=n_technicians)
    day = demo.dispatch_day(np.random.default_rng(seed), size, with_tiers=True)
    request = json_format.ParseDict(day, pb.AssignJobsRequest())
    request.options.mode = pb.ASSIGN_MODE_ASSIGN  # the demo's day asks for ROUTE
    if not windows:
        for job in request.jobs:
            job.ClearField("time_window")
    return dp.Problem(
        tuple(to_job(j, f"jobs[{i}]") for i, j in enumerate(request.jobs)),
        tuple(to_technician(t, f"technicians[{i}]") for i, t in enumerate(request.technicians)),
        to_options(request.options, time_limit_s=10.0),
    )


def greedy(problem: dp.Problem) -> dp.Plan:
    started = time.perf_counter()
    elig = eligibility.compute(problem)
    room = elig.capacity.copy()
    tech_of_job = np.full(len(problem.jobs), -1)
    order = sorted(range(len(problem.jobs)), key=lambda j: (-problem.jobs[j].priority, j))
    for j in order:
        candidates = np.flatnonzero(elig.feasible[j] & (room > 0))
        if candidates.size:
            t = candidates[np.argmin(elig.km[j, candidates])]
            tech_of_job[j] = t
            room[t] -= 1
    return plan_from_assignment(problem, elig, tech_of_job, started)


def run(n_jobs: int, n_technicians: int, seed: int, windows: bool) -> dict:
    problem = city(n_jobs, n_technicians, seed, windows)
    started = time.perf_counter()
    exact = solve(problem)
    seconds = time.perf_counter() - started
    base = greedy(problem)
    started = time.perf_counter()
    full = solve_assign(problem, eligibility.compute(problem), prune=False)
    full_seconds = time.perf_counter() - started

    return {
        "jobs": n_jobs,
        "technicians": n_technicians,
        "seconds": round(seconds, 3),
        "status": exact.status.value,
        "objective": round(exact.objective, 1),
        "assigned": len(exact.assignments),
        "travel_km": round(exact.travel_km, 1),
        "greedy_objective": round(base.objective, 1),
        "greedy_assigned": len(base.assignments),
        "greedy_travel_km": round(base.travel_km, 1),
        "full_graph_objective": round(full.objective, 1),
        "full_graph_seconds": round(full_seconds, 3),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dispatch_city", description=__doc__)
    parser.add_argument("--sizes", default="1000x300,10000x3000", help="JOBSxTECHNICIANS, comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--windows", action="store_true", help="keep the jobs' time windows (default: all day)"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rows = []
    print(
        "generated city, ASSIGN mode (min-cost flow, pruned on large instances) against greedy "
        "nearest-qualified, and the flow on the full graph"
    )

    print(
        f"{'jobs':>6} {'techs':>6} {'seconds':>8} {'assigned':>9} {'objective':>12} {'km':>9} "
        f"{'greedy asg':>10} {'greedy obj':>12} {'greedy km':>10} {'obj +%':>7} {'km +%':>6}"
        f" {'full-graph obj':>15} {'s':>6}"
    )
    for size in args.sizes.split(","):
        n_jobs, n_techs = (int(x) for x in size.lower().split("x"))
        row = run(n_jobs, n_techs, args.seed, args.windows)
        rows.append(row)
        cells = [
            f"{n_jobs:>6} {n_techs:>6} {row['seconds']:>8.3f} {row['assigned']:>9}",
            f"{row['objective']:>12.1f} {row['travel_km']:>9.1f} {row['greedy_assigned']:>10}",
            f"{row['greedy_objective']:>12.1f} {row['greedy_travel_km']:>10.1f}",
            f"{100 * (row['greedy_objective'] / row['objective'] - 1):>7.1f}",
            f"{100 * (row['greedy_travel_km'] / row['travel_km'] - 1):>6.1f}",
            f"{row['full_graph_objective']:>15.1f} {row['full_graph_seconds']:>6.1f}",
        ]
        print(" ".join(cells))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
