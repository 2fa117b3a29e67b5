"""Re-planning a running day, and appointment windows to offer a customer.

    python -m benchmarks.replan [--sizes 300x80] [--seeds 1,2,3] [--limit-s 5] [--reassignment W] [--quick]

Re-plan: the demo generator's city day (ROUTE mode, with a lunch break for every technician), planned
in the morning, then re-planned at 11:00 Shanghai time with 8 urgent new jobs (tests/support/replan.py
plays the morning: started jobs done, technicians where their last job was and free when it ends).
Once from scratch (no current technicians sent, as before issue 27), once with each remaining job's
current technician, each solved as the service does (two searches in two solver processes): how many
remaining jobs move to another technician, the kilometres, the jobs placed, and Shifu's objective
without the reassignment term (travel and the drop penalties of the jobs left out) for both. "Morning's
routes km" is what the morning's plan drives for the jobs still open, in its order from where each
technician is at 11:00 (no new job): what keeping that plan as it stands drives.

OfferSlots: a 170-job, 30-technician plan (the same generator's day planned, 170 of its placed jobs
pinned), 5 two-hour windows for a new job, answered in process as the handler does; latency at p50 and
p95 over many bookings, and for every refused window an exact check (every order of each qualified
technician's day with the new job, by dynamic programming) of whether room existed anyway.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import time
from concurrent import futures
from datetime import UTC, datetime, timedelta

import numpy as np

from benchmarks.dispatch_city import city
from models.dispatch import day_schedule, eligibility, offer_slots, route_plan
from models.dispatch import problem as dp
from models.dispatch.solver import solve
from models.dispatch.travel import end_node, travel
from tests.support.replan import kept_km, moves, running_day

SHANGHAI = timedelta(hours=8)
DAY = datetime(2026, 11, 2, tzinfo=UTC) - SHANGHAI  # the demo day's midnight, Shanghai time
EXACT_MAX_JOBS = 12  # days up to this many jobs (with the new one) are checked over every order


def at(hours: float) -> float:
    return (DAY + timedelta(hours=hours)).timestamp()


def lunch(problem: dp.Problem) -> dp.Problem:
    """Every technician takes 30 minutes of lunch starting between 12:00 and 13:30."""
    pause = dp.Break(dp.Window(at(12), at(13.5)), 30.0)
    techs = tuple(
        dataclasses.replace(t, breaks=(pause,) if t.shift and t.shift.end >= at(14) else ())
        for t in problem.technicians
    )
    return dataclasses.replace(problem, technicians=techs)


def route_day(n_jobs: int, n_techs: int, seed: int, limit_s: float) -> dp.Problem:
    problem = lunch(city(n_jobs, n_techs, seed, windows=True))
    options = dataclasses.replace(problem.options, mode=dp.Mode.ROUTE, time_limit_s=limit_s)
    return dataclasses.replace(problem, options=options)


def replan_row(
    n_jobs: int, n_techs: int, seed: int, limit_s: float, breaks: bool, reassignment: float | None = None
) -> dict:
    problem = route_day(n_jobs, n_techs, seed, limit_s)
    if not breaks:
        problem = dataclasses.replace(
            problem, technicians=tuple(dataclasses.replace(t, breaks=()) for t in problem.technicians)
        )
    # As the service solves: two searches side by side, one per solver process.
    with futures.ProcessPoolExecutor(1) as one, futures.ProcessPoolExecutor(1) as two:
        morning = solve(problem, (one, two))
        kept = running_day(problem, morning, at(11), urgent=8, seed=seed)
        if reassignment is not None:  # the weight the re-plan with current technicians is priced at
            weights = dataclasses.replace(kept.options.weights, reassignment=reassignment)
            kept = dataclasses.replace(kept, options=dataclasses.replace(kept.options, weights=weights))
        scratch = dataclasses.replace(
            kept, jobs=tuple(dataclasses.replace(j, current_technician_id=None) for j in kept.jobs)
        )
        plans = {"scratch": solve(scratch, (one, two)), "kept": solve(kept, (one, two))}
    # Both plans priced alike: Shifu's objective without the reassignment term (drops count).
    elig = eligibility.compute(scratch)
    return {
        "seed": seed,
        "breaks": breaks,
        **{name: moves(kept, plan, morning) for name, plan in plans.items()},
        "morning_km": kept_km(kept, morning),
        "morning": (len(morning.assignments), morning.travel_km, morning.objective),
        **{f"{name}_objective": route_plan.objective(scratch, elig, plan) for name, plan in plans.items()},
    }


def planned(n_planned: int, n_techs: int, seed: int, mode: dp.Mode) -> dp.Problem:
    """The generator's day planned, `n_planned` of its placed jobs (drawn at random) pinned, in the
    plan's order: a day with some room left, as a booking finds it."""
    problem = lunch(city(2 * n_planned, n_techs, seed, windows=True))
    # Up to 8 jobs a day (the generator's 3-6 would fill 30 technicians before 170 jobs).
    techs = tuple(dataclasses.replace(t, max_jobs=8) for t in problem.technicians)
    options = dataclasses.replace(problem.options, mode=mode, time_limit_s=5.0)
    problem = dataclasses.replace(problem, technicians=techs, options=options)
    plan = solve(problem)
    order = {a.job_id: (a.technician_id, a.sequence) for a in plan.assignments}
    placed = sorted((j for j in problem.jobs if j.job_id in order), key=lambda j: order[j.job_id])
    keep = set(
        np.random.default_rng(seed).choice(len(placed), size=min(n_planned, len(placed)), replace=False)
    )
    jobs = [j for k, j in enumerate(placed) if k in keep]
    pinned = tuple(dataclasses.replace(j, pinned_technician_id=order[j.job_id][0]) for j in jobs)
    return dataclasses.replace(problem, jobs=pinned)


def bookings(problem: dp.Problem, n: int, seed: int) -> list[dp.Job]:
    rng = np.random.default_rng(seed)
    lat = [j.location.lat for j in problem.jobs]
    lng = [j.location.lng for j in problem.jobs]
    skills = sorted({s for j in problem.jobs for s in j.required_skills})
    return [
        dp.Job(
            job_id=f"booking{k}",
            location=dp.GeoPoint(
                float(rng.uniform(min(lat), max(lat))), float(rng.uniform(min(lng), max(lng)))
            ),
            required_skills=frozenset({str(rng.choice(skills))}),
            duration_minutes=float(rng.choice([45, 60, 90])),
        )
        for k in range(n)
    ]


WINDOWS = [dp.Window(at(h), at(h + 2)) for h in (9, 11, 13, 15, 17)]


def exact_room(problem: dp.Problem, job: dp.Job, window: dp.Window) -> bool | None:
    """Whether some qualified technician with room has a day holding its planned jobs and the job in
    `window`, in any order: a dynamic program over (jobs done, last job, breaks taken) keeping the
    earliest time, exact as waiting is allowed (None: a day of more than EXACT_MAX_JOBS jobs)."""
    booked = dataclasses.replace(job, window=window)
    trial = dataclasses.replace(problem, jobs=(*problem.jobs, booked))
    elig = eligibility.compute(trial)
    new = len(problem.jobs)
    unknown = False
    for t in np.flatnonzero(elig.feasible[new]).tolist():
        tech = trial.technicians[t]
        mine = [j for j, x in enumerate(problem.jobs) if x.pinned_technician_id == tech.technician_id]
        if tech.max_jobs and len(mine) + 1 + tech.assigned_jobs > tech.max_jobs:
            continue
        if len(mine) + 1 > EXACT_MAX_JOBS:
            unknown = True
            continue
        if _any_order(trial, t, [*mine, new]):
            return True
    return None if unknown else False


def _any_order(problem: dp.Problem, t: int, jobs: list[int]) -> bool:
    tech, n_tech = problem.technicians[t], len(problem.technicians)
    nodes = np.array([t, *(n_tech + j for j in jobs)])
    # Row 0 leaves from home, column 0 arrives where the day ends.
    _, minutes = travel(problem, nodes, np.array([end_node(problem, t), *nodes[1:]]))
    seconds = 60.0 * minutes
    shift, pauses = day_schedule.shift_bounds(tech), day_schedule.pauses(tech)
    home = problem.options.mode is dp.Mode.ROUTE
    layer = {(0, 0): day_schedule.begin(shift)}  # (visited mask, last position: 0 home) -> states
    for _ in jobs:
        after: dict[tuple[int, int], day_schedule.States] = {}
        for (mask, last), states in layer.items():
            for p, j in enumerate(jobs, start=1):
                if mask >> p & 1:
                    continue
                x = problem.jobs[j]
                early = x.window.start if x.window is not None else -math.inf
                stop = day_schedule.Stop(
                    float(seconds[last, p]), early, x.latest_start(), 60.0 * x.duration_minutes
                )
                reached = day_schedule.advance(states, pauses, stop, shift[1])
                key = (mask | 1 << p, p)
                merged = after.setdefault(key, {})
                for k, state in reached.items():
                    if k not in merged or state.clock < merged[k].clock:
                        merged[k] = state
        layer = {key: states for key, states in after.items() if states}
    return any(
        day_schedule.close(states, pauses, float(seconds[last, 0]) if home else None, shift[1]) is not None
        for (_, last), states in layer.items()
    )


def offer_rows(seed: int, n_bookings: int) -> dict:
    problem = planned(170, 30, seed, dp.Mode.ASSIGN)
    seconds, refused, roomy, unknown, available = [], 0, 0, 0, 0
    for job in bookings(problem, n_bookings, seed):
        started = time.perf_counter()
        offers = offer_slots.offer(job, WINDOWS, problem)
        seconds.append(time.perf_counter() - started)
        for o in offers:
            if o.available:
                available += 1
                # The exact check agrees with every offer (else it, or the offer, is wrong).
                assert exact_room(problem, job, o.window) is not False, (job.job_id, o)
                continue
            refused += 1
            found = exact_room(problem, job, o.window)
            roomy += found is True
            unknown += found is None
    seconds.sort()
    return {
        "seed": seed,
        "planned_jobs": len(problem.jobs),
        "calls": len(seconds),
        "p50_ms": 1000 * statistics.median(seconds),
        "p95_ms": 1000 * seconds[int(0.95 * (len(seconds) - 1))],
        "available": available,
        "refused": refused,
        "refused_with_room": roomy,
        "refused_unchecked": unknown,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replan", description=__doc__)
    parser.add_argument("--sizes", default="300x80")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--limit-s", type=float, default=5.0)
    parser.add_argument("--bookings", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="one seed, fewer bookings")
    parser.add_argument("--reassignment", type=float, help="ObjectiveWeights.reassignment (default: its own)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")][: 1 if args.quick else None]
    print("re-plan at 11:00 with 8 urgent jobs (ROUTE); moved = remaining jobs given to another technician")
    header = ["size", "lunch", "seed", "remaining", "morning's routes km", "scratch: moved", "km", "placed",
              "objective", "current sent: moved", "km", "placed", "objective", "km ratio"]  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    mornings = []
    for size in args.sizes.split(","):
        n_jobs, n_techs = (int(x) for x in size.split("x"))
        for breaks in (False, True):
            for seed in seeds:
                row = replan_row(n_jobs, n_techs, seed, args.limit_s, breaks, args.reassignment)
                mornings.append((size, "yes" if breaks else "no", seed, *row["morning"]))
                a, b = row["scratch"], row["kept"]
                cells = [size, "yes" if breaks else "no", seed, a.remaining, f"{row['morning_km']:.1f}",
                         f"{a.moved / a.remaining:.1%}",
                         f"{a.travel_km:.1f}", a.placed, f"{row['scratch_objective']:,.0f}",
                         f"{b.moved / b.remaining:.1%}", f"{b.travel_km:.1f}", b.placed,
                         f"{row['kept_objective']:,.0f}", f"{b.travel_km / a.travel_km:.3f}"]  # fmt: skip
                print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)
    print()
    print("the mornings (first plans of the whole day, as the service solves them)")
    print("| size | lunch | seed | placed | km | objective |")
    print("|---|---|---|---|---|---|")
    for size, lunch, seed, placed, km, objective in mornings:
        print(f"| {size} | {lunch} | {seed} | {placed} | {km:.1f} | {objective:,.0f} |")
    print()
    print("OfferSlots: 5 windows for a new job over a 170-job, 30-technician plan (ASSIGN, lunch breaks)")
    print("| seed | planned jobs | calls | p50 ms | p95 ms | offered | refused | room anyway | unchecked |")
    print("|---|---|---|---|---|---|---|---|---|")
    for seed in seeds:
        r = offer_rows(seed, 10 if args.quick else args.bookings)
        cells = [r["seed"], r["planned_jobs"], r["calls"], f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}",
                 r["available"], r["refused"], r["refused_with_room"], r["refused_unchecked"]]  # fmt: skip
        print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
