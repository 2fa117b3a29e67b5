"""Solomon VRPTW (C1, R1, RC1) through `AssignJobs` in ROUTE mode over gRPC, checked and compared with
the best known distances.

    python -m benchmarks.solomon --data ../shared/data/solomon [--instances C101,R101] [--time-limit-s 10]
                                 [--out routes.json]

Each customer is a job (its window [ready, due + service]: service starts by the due date; its
service time; its demand), 25 technicians wait at the depot with the file's vehicle capacity and the
depot's window as their shift; the request carries the Euclidean distance matrix and the same matrix
as travel minutes. Only travel is priced (tier and balance weights 0) and leaving a customer out costs
far more than any route. Every plan is checked independently: windows with real-valued travel,
capacity, every customer exactly once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import grpc
import numpy as np

from benchmarks import load
from service.pb.shifu.v1 import dispatch_pb2 as pb
from service.pb.shifu.v1 import dispatch_pb2_grpc

EPOCH = 1_800_000_000  # minute 0 of every instance


def parse(path: Path) -> dict:
    lines = path.read_text().splitlines()
    vehicles, capacity = (int(x) for x in lines[4].split())
    rows = np.array([[float(x) for x in line.split()] for line in lines[9:] if line.strip()])
    return {"name": lines[0].strip(), "vehicles": vehicles, "capacity": capacity, "rows": rows}


def request(instance: dict, time_limit_s: float) -> tuple[pb.AssignJobsRequest, np.ndarray]:
    rows = instance["rows"]
    depot, customers = rows[0], rows[1:]
    n_tech = instance["vehicles"]
    points = np.vstack([np.repeat(depot[None, 1:3], n_tech, axis=0), customers[:, 1:3]])
    distance = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    message = pb.AssignJobsRequest()
    for t in range(n_tech):
        tech = message.technicians.add(technician_id=f"v{t}", vehicle_capacity=instance["capacity"])
        tech.location.lat, tech.location.lng = depot[2] / 1000, depot[1] / 1000
        tech.shift.start.seconds, tech.shift.end.seconds = (
            EPOCH + int(depot[4]) * 60,
            EPOCH + int(depot[5]) * 60,
        )
    for c in customers:
        job = message.jobs.add(job_id=str(int(c[0])), duration_minutes=int(c[6]), demand=c[3])
        job.location.lat, job.location.lng = c[2] / 1000, c[1] / 1000
        job.time_window.start.seconds = EPOCH + int(c[4]) * 60
        job.time_window.end.seconds = EPOCH + int(c[5]) * 60  # Solomon's due date bounds the start
    options = message.options
    options.mode = pb.ASSIGN_MODE_ROUTE
    options.time_limit_ms = int(time_limit_s * 1000)
    options.distance_matrix.values.extend(distance.ravel().tolist())
    options.duration_matrix.values.extend(distance.ravel().tolist())
    options.weights.travel_per_km, options.weights.tier, options.weights.balance = 1.0, 0.0, 0.0
    options.weights.drop_penalty, options.weights.drop_penalty_per_priority = 100_000.0, 0.0
    return message, distance


def check(
    instance: dict, answer: pb.AssignJobsResponse, distance: np.ndarray
) -> tuple[float, list[str], dict]:
    """(total distance, problems found, routes) of a plan, recomputed from the instance alone."""
    rows, n_tech = instance["rows"], instance["vehicles"]
    problems: list[str] = []
    routes: dict[str, list[int]] = {}
    total = 0.0
    for a in sorted(answer.assignments, key=lambda a: (a.technician_id, a.sequence)):
        routes.setdefault(a.technician_id, []).append(int(a.job_id))
    served = [c for route in routes.values() for c in route]
    if sorted(served) != list(range(1, len(rows))):
        problems.append(f"{len(served)} customers served, {len(set(served))} distinct, of {len(rows) - 1}")
    for route in routes.values():
        node, clock, load_ = 0, rows[0][4], 0.0
        for c in route:
            nxt = n_tech + c - 1
            total += distance[node, nxt]
            clock = max(clock + distance[node, nxt], rows[c][4])
            if clock > rows[c][5] + 1e-6:
                problems.append(f"customer {c} served at {clock:.2f}, after its due date {rows[c][5]:.0f}")
            clock += rows[c][6]
            load_ += rows[c][3]
            node = nxt
        total += distance[node, 0]
        if clock + distance[node, 0] > rows[0][5] + 1e-6:
            problems.append("a route returns after the depot closes")
        if load_ > instance["capacity"]:
            problems.append(f"a route carries {load_:.0f} > {instance['capacity']}")
    return total, problems, routes


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.solomon", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--data", type=Path, default=Path("../shared/data/solomon"))
    parser.add_argument("--instances", default="", help="comma-separated names; default: all")
    parser.add_argument("--time-limit-s", type=float, default=10.0)
    parser.add_argument("--out", type=Path, help="write the routes and results as JSON")
    args = parser.parse_args(argv)
    best = json.loads((args.data / "VRPTW_BKS.json").read_text())
    names = args.instances.split(",") if args.instances else sorted(p.stem for p in args.data.glob("*.txt"))
    results = []
    print(f"Solomon VRPTW through AssignJobs (ROUTE) over gRPC, {args.time_limit_s:g} s per instance")
    print(f"{'instance':<9}{'distance':>10}{'best':>10}{'gap %':>8}{'routes':>7}{'seconds':>9}  check")
    with load.service_process(Path("/nonexistent-models"), 1, wait_for="shifu.v1.DispatchService") as port:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
        for name in names:
            instance = parse(args.data / f"{name}.txt")
            message, distance = request(instance, args.time_limit_s)
            started = time.perf_counter()
            answer = stub.AssignJobs(message, timeout=args.time_limit_s + 60)
            seconds = time.perf_counter() - started
            total, problems, routes = check(instance, answer, distance)
            known = best[f"{name}_distance"]["best_known_cost"]
            gap = 100 * (total / known - 1)
            results.append({"name": name, "distance": total, "best_known": known, "gap": gap,
                            "routes": routes, "seconds": seconds, "problems": problems})  # fmt: skip
            verdict = "ok" if not problems else "; ".join(problems[:3])
            print(
                f"{name:<9}{total:>10.2f}{known:>10.2f}{gap:>8.2f}{len(routes):>7}{seconds:>9.1f}  {verdict}"
            )
        channel.close()
    gaps = [r["gap"] for r in results]
    feasible = sum(not r["problems"] for r in results)
    print(f"median gap {statistics.median(gaps):.2f}% (target ≤ 2%), mean {statistics.mean(gaps):.2f}%, "
          f"worst {max(gaps):.2f}%; {feasible}/{len(results)} plans pass every check")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
