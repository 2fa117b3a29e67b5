"""Solomon VRPTW (C1, R1, RC1) through `AssignJobs` in ROUTE mode over gRPC, checked and compared with
the best known distances.

    python -m benchmarks.solomon --data ../shared/data/solomon [--instances C101,R101] [--time-limit-s 10]
                                 [--peers] [--out routes.json]

With --peers, PyVRP and VROOM solve the same instances with the same time limit on the same two cores
(one solver at a time), and every plan is checked by the same code. Homberger instances are in the same
format: --data ../shared/data/homberger/200.

Each customer is a job (its window [ready, due] as it is: the service starts within it, as Shifu,
PyVRP and VROOM all read a time window; its service time; its demand), the file's vehicles wait at the
depot with the file's vehicle capacity and the
depot's window as their shift; the request carries the Euclidean distance matrix and the same matrix
as travel minutes. Only travel is priced (tier and balance weights 0) and leaving a customer out costs
far more than any route. Every plan is checked independently: windows with real-valued travel,
capacity, every customer exactly once.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from concurrent import futures
from datetime import timedelta
from pathlib import Path

import grpc
import numpy as np

from benchmarks import load
from service.pb.shifu.v1 import dispatch_pb2 as pb
from service.pb.shifu.v1 import dispatch_pb2_grpc

EPOCH = 1_800_000_000  # minute 0 of every instance
PEER_SCALE = 100  # the peers' integer data: hundredths of the instance's units


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


def shifu_routes(answer: pb.AssignJobsResponse) -> list[list[int]]:
    routes: dict[str, list[int]] = {}
    for a in sorted(answer.assignments, key=lambda a: (a.technician_id, a.sequence)):
        routes.setdefault(a.technician_id, []).append(int(a.job_id))
    return list(routes.values())


def check(instance: dict, routes: list[list[int]]) -> tuple[float, list[str]]:
    """(total distance, problems found) of a plan (customer numbers per route), recomputed from the
    instance alone with real-valued Euclidean distances, whoever made it."""
    rows = instance["rows"]
    xy = rows[:, 1:3]
    problems: list[str] = []
    total = 0.0
    served = [c for route in routes for c in route]
    if sorted(served) != list(range(1, len(rows))):
        problems.append(f"{len(served)} customers served, {len(set(served))} distinct, of {len(rows) - 1}")
    if len(routes) > instance["vehicles"]:
        problems.append(f"{len(routes)} routes, more than the {instance['vehicles']} vehicles")
    for route in routes:
        node, clock, load_ = 0, rows[0][4], 0.0
        for c in route:
            leg = float(np.hypot(*(xy[c] - xy[node])))
            total += leg
            clock = max(clock + leg, rows[c][4])
            if clock > rows[c][5] + 1e-6:
                problems.append(f"customer {c} served at {clock:.2f}, after its due date {rows[c][5]:.0f}")
            clock += rows[c][6]
            load_ += rows[c][3]
            node = c
        home = float(np.hypot(*(xy[0] - xy[node])))
        total += home
        if clock + home > rows[0][5] + 1e-6:
            problems.append("a route returns after the depot closes")
        if load_ > instance["capacity"]:
            problems.append(f"a route carries {load_:.0f} > {instance['capacity']}")
    return total, problems


def _integer_data(instance: dict) -> tuple[np.ndarray, np.ndarray]:
    """The peers' integer data: distances (= travel times) in hundredths, rounded up (so that a plan
    feasible in these integers is feasible in real numbers, as the check recomputes it), and the
    instance's times in hundredths."""
    xy = instance["rows"][:, 1:3]
    distance = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
    times = np.rint(instance["rows"] * PEER_SCALE).astype(np.int64)
    return np.ceil(distance * PEER_SCALE - 1e-9).astype(np.int64), times


def pyvrp_routes(instance: dict, seconds: float, seed: int) -> list[list[int]]:
    import pyvrp
    from pyvrp.stop import MaxRuntime

    matrix, rows = _integer_data(instance)
    data = pyvrp.ProblemData(
        locations=[pyvrp.Location(int(r[1]), int(r[2])) for r in rows],
        clients=[
            pyvrp.Client(location=c, delivery=[int(instance["rows"][c][3])], service_duration=int(rows[c][6]),
                         tw_early=int(rows[c][4]), tw_late=int(rows[c][5]))
            for c in range(1, len(rows))
        ],
        depots=[pyvrp.Depot(location=0, tw_early=int(rows[0][4]), tw_late=int(rows[0][5]))],
        vehicle_types=[pyvrp.VehicleType(num_available=instance["vehicles"], capacity=[instance["capacity"]],
                                         tw_early=int(rows[0][4]), tw_late=int(rows[0][5]))],
        distance_matrices=[matrix],  # type: ignore[list-item]
        duration_matrices=[matrix],  # type: ignore[list-item]
    )  # fmt: skip
    best = pyvrp.solve(data, MaxRuntime(seconds), seed=seed, display=False, collect_stats=False).best
    return [[a.idx + 1 for a in route.schedule() if a.is_client()] for route in best.routes()]


def pyvrp_best_of_two(instance: dict, seconds: float) -> list[list[int]]:
    """PyVRP as its authors benchmark it on two cores: two seeds side by side, the shorter plan kept."""
    with futures.ProcessPoolExecutor(2) as pool:
        plans = list(pool.map(pyvrp_routes, [instance, instance], [seconds, seconds], [1, 2]))
    return min(plans, key=lambda routes: (bool(check(instance, routes)[1]), check(instance, routes)[0]))


def vroom_routes(instance: dict, seconds: float) -> list[list[int]]:
    import vroom

    matrix, rows = _integer_data(instance)
    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=matrix.astype(np.uint32))
    window = vroom.TimeWindow(int(rows[0][4]), int(rows[0][5]))
    for v in range(instance["vehicles"]):
        problem.add_vehicle(
            vroom.Vehicle(v, start=0, end=0, capacity=[instance["capacity"]], time_window=window)
        )
    for c in range(1, len(rows)):
        window = vroom.TimeWindow(int(rows[c][4]), int(rows[c][5]))
        demand = [int(instance["rows"][c][3])]
        job = vroom.Job(
            c, location=c, delivery=demand, default_service=int(rows[c][6]), time_windows=[window]
        )
        problem.add_job(job)
    solution = problem.solve(exploration_level=5, nb_threads=2, timeout=timedelta(seconds=seconds))
    routes: dict[int, list[int]] = {}
    for row in solution.routes.itertuples():
        if row.type == "job":
            routes.setdefault(int(row.vehicle_id), []).append(int(row.id))
    return list(routes.values())


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.solomon", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--data", type=Path, default=Path("../shared/data/solomon"))
    parser.add_argument("--instances", default="", help="comma-separated names; default: all")
    parser.add_argument("--time-limit-s", type=float, default=10.0)
    parser.add_argument("--peers", action="store_true", help="PyVRP and VROOM on the same instances")
    parser.add_argument("--out", type=Path, help="write the routes and results as JSON")
    args = parser.parse_args(argv)
    known_file = next((p for p in (args.data, args.data.parent) if (p / "VRPTW_BKS.json").exists()), None)
    best = json.loads((known_file / "VRPTW_BKS.json").read_text()) if known_file else {}
    names = args.instances.split(",") if args.instances else sorted(p.stem for p in args.data.glob("*.txt"))
    results = []
    print(
        f"{args.data.name}: VRPTW through AssignJobs (ROUTE) over gRPC, {args.time_limit_s:g} s per instance"
    )
    if args.peers:
        print(
            "beside PyVRP 0.14 (two seeds on two cores, the shorter plan kept) and VROOM 1.15 (two threads)"
        )
    header = f"{'instance':<10}{'Shifu':>10}{'routes':>7}{'s':>6}"
    if args.peers:
        header += f"{'PyVRP':>10}{'routes':>7}{'VROOM':>10}{'routes':>7}{'s':>6}"
        header += f"{'Shifu/PyVRP':>12}{'VROOM/PyVRP':>12}"
    print(header + f"{'best known':>11}  check")
    with load.service_process(Path("/nonexistent-models"), 1, wait_for="shifu.v1.DispatchService") as port:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
        for name in names:
            instance = parse(args.data / f"{name}.txt")
            message, _ = request(instance, args.time_limit_s)
            started = time.perf_counter()
            answer = stub.AssignJobs(message, timeout=args.time_limit_s + 60)
            seconds = time.perf_counter() - started
            routes = shifu_routes(answer)
            total, problems = check(instance, routes)
            known = best.get(f"{name}_distance", best.get(name, {})).get("best_known_cost", math.nan)
            row = {"name": name, "distance": total, "routes": routes, "seconds": seconds,
                   "problems": problems, "best_known": known}  # fmt: skip
            line = f"{name:<10}{total:>10.1f}{len(routes):>7}{seconds:>6.1f}"
            if args.peers:
                peers = {}
                for peer, solve_peer in (("pyvrp", pyvrp_best_of_two), ("vroom", vroom_routes)):
                    started = time.perf_counter()
                    peer_routes = solve_peer(instance, args.time_limit_s)
                    peer_total, peer_problems = check(instance, peer_routes)
                    peers[peer] = (peer_total, len(peer_routes), time.perf_counter() - started, peer_problems)
                    problems += [f"{peer}: {p}" for p in peer_problems]
                (pyvrp_km, pyvrp_n, _, _), (vroom_km, vroom_n, vroom_s, _) = peers["pyvrp"], peers["vroom"]
                row |= {"pyvrp": pyvrp_km, "vroom": vroom_km}
                row |= {"ratio": total / pyvrp_km, "vroom_ratio": vroom_km / pyvrp_km}
                line += f"{pyvrp_km:>10.1f}{pyvrp_n:>7}{vroom_km:>10.1f}{vroom_n:>7}{vroom_s:>6.1f}"
                line += f"{row['ratio']:>12.4f}{row['vroom_ratio']:>12.4f}"
            results.append(row)
            verdict = "ok" if not problems else "; ".join(problems[:3])
            print(f"{line}{known:>11.1f}  {verdict}")
        channel.close()
    feasible = sum(not r["problems"] for r in results)
    if args.peers:
        ratios = [r["ratio"] for r in results]
        vroom_ratios = [r["vroom_ratio"] for r in results]
        print(f"Shifu/PyVRP: median {statistics.median(ratios):.4f}, worst {max(ratios):.4f}; "
              f"VROOM/PyVRP: median {statistics.median(vroom_ratios):.4f}, worst {max(vroom_ratios):.4f}; "
              f"{feasible}/{len(results)} instances with every plan passing every check")  # fmt: skip
    else:
        gaps = [100 * (r["distance"] / r["best_known"] - 1) for r in results]
        print(f"median gap to the best known {statistics.median(gaps):.2f}%, worst {max(gaps):.2f}%; "
              f"{feasible}/{len(results)} plans pass every check")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
