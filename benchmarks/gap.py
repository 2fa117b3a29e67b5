"""OR-Library generalized assignment instances through the dispatch solver the RPC uses.

    python -m benchmarks.gap --data ../shared/data/gap [--instances c05100,d801600] [--time-limit-s 10]
                             [--workers 2] --out FILE.json

Agents are technicians whose shift holds their capacity in minutes; jobs take no time on site, and the
request's matrices say what each job costs (distance) and takes (travel minutes) with each technician:
ASSIGN mode with shift minutes, which is the GAP. The `_Min` rows of bounds.txt are the known optima.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np

from models.dispatch import problem as dp
from models.dispatch.solver import solve

EPOCH = 1_800_000_000.0


def parse(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(costs m × n, resources m × n, capacities m)."""
    numbers = np.array(path.read_text().split(), dtype=np.int64)
    m, n = int(numbers[0]), int(numbers[1])
    costs = numbers[2 : 2 + m * n].reshape(m, n)
    resources = numbers[2 + m * n : 2 + 2 * m * n].reshape(m, n)
    return costs, resources, numbers[2 + 2 * m * n : 2 + 2 * m * n + m]


def problem(
    costs: np.ndarray, resources: np.ndarray, capacities: np.ndarray, time_limit_s: float, workers: int
) -> dp.Problem:
    m, n = costs.shape
    size = m + n
    distance, duration = np.zeros((size, size)), np.zeros((size, size))
    distance[:m, m:], duration[:m, m:] = costs, resources
    here = dp.GeoPoint(0.0, 0.0)
    technicians = tuple(
        dp.Technician(f"a{i}", here, shift=dp.Window(EPOCH, EPOCH + 60.0 * float(capacities[i])))
        for i in range(m)
    )
    jobs = tuple(dp.Job(f"j{j}", here) for j in range(n))
    options = dp.Options(
        time_limit_s=time_limit_s,
        distance_km=distance.ravel(),
        duration_min=duration.ravel(),
        weights=dp.Weights(
            travel_per_km=1.0, drop_penalty=1e6, drop_penalty_per_priority=0.0, tier=0.0, balance=0.0
        ),
        capacity=dp.Capacity.SHIFT_MINUTES,
        workers=workers,
    )
    return dp.Problem(jobs, technicians, options)


def best_known(data: Path) -> dict[str, tuple[int, bool]]:
    """Per instance, the best known cost of the `_Min` problem and whether it is a proven optimum."""
    rows = [line.split() for line in (data / "bounds.txt").read_text().splitlines() if line.strip()]
    return {
        name[: -len("_Min")]: (int(upper), lower == upper)
        for name, lower, upper in rows
        if name.endswith("_Min")
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gap",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data/gap"))
    parser.add_argument("--instances", default="", help="comma-separated names; default: all")
    parser.add_argument("--time-limit-s", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    best = best_known(args.data)
    names = (
        args.instances.split(",")
        if args.instances
        else sorted(p.name for p in args.data.iterdir() if p.name != "bounds.txt")
    )
    print(
        f"GAP through ASSIGN mode with shift minutes (CP-SAT), {args.time_limit_s:g} s, "
        f"{args.workers} workers"
    )
    print(
        f"{'instance':<10}{'jobs':>6}{'objective':>11}{'best known':>11}{'gap %':>8}{'bound':>11}"
        f"{'status':>10}{'s':>7}"
    )
    results = []
    for name in names:
        costs, resources, capacities = parse(args.data / name)
        started = time.perf_counter()
        plan = solve(problem(costs, resources, capacities, args.time_limit_s, args.workers))
        seconds = time.perf_counter() - started
        agent = {a.job_id: int(a.technician_id[1:]) for a in plan.assignments}
        assignment = [agent.get(f"j{j}", -1) for j in range(costs.shape[1])]
        chosen = np.array(assignment)
        complete = bool((chosen >= 0).all())
        objective = int(costs[chosen, np.arange(chosen.size)].sum()) if complete else None
        used = np.bincount(
            chosen[chosen >= 0],
            weights=resources[chosen[chosen >= 0], np.flatnonzero(chosen >= 0)],
            minlength=costs.shape[0],
        )
        feasible = complete and bool((used <= capacities).all())
        optimum, proven = best.get(name, (None, False))
        gap = 100 * (objective / optimum - 1) if objective is not None and optimum else None
        results.append(
            {
                "name": name,
                "objective": objective,
                "optimum": optimum,
                "proven_optimum": proven,
                "gap": gap,
                "seconds": seconds,
                "bound": plan.bound,
                "status": plan.status.value,
                "feasible": feasible,
                "assignment": assignment,
            }
        )
        shown = f"{gap:>8.2f}" if gap is not None else f"{'-':>8}"
        print(
            f"{name:<10}{costs.shape[1]:>6}{objective if objective is not None else '-':>11}"
            f"{(str(optimum) + ('' if proven else '*')) if optimum else '-':>11}"
            f"{shown}{plan.bound or float('nan'):>11.1f}{plan.status.value:>10}{seconds:>7.1f}"
            f"{'' if feasible else '  INFEASIBLE'}"
        )
    large = [r for r in results if len(r["assignment"]) >= 200 and r["optimum"]]
    gaps = [r["gap"] for r in large if r["gap"] is not None and r["feasible"]]
    if large:
        print(
            f"200+ jobs: mean gap {statistics.mean(gaps or [math.nan]):.2f}% (target ≤ 0.5%), worst "
            f"{max(gaps or [math.nan]):.2f}% (target ≤ 2%) over {len(gaps)} instances; "
            f"{len(large) - len(gaps)} without a complete feasible plan"
        )
    # OR-Library's gap1–gap12 are the files named cMMNN_k.
    small = [r for r in results if "_" in r["name"] and r["optimum"]]
    if small:
        optimal = sum(r["feasible"] and abs(r["gap"]) < 1e-9 and r["status"] == "optimal" for r in small)
        print(f"gap1–12: {optimal}/{len(small)} at the optimum and proven so")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
