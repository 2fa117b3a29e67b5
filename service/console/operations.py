"""The operator's pages from the process's metrics, the dispatch plans it answered and the reports of
--tiers-dir and the supply-demand directory: /, /dispatch, /tiers, /supply-demand."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import duckdb
import pandas as pd

from models.dispatch.problem import GeoPoint
from service import metrics
from service.console import charts, data
from service.console.view import Section, table
from service.plan_log import Solved

QUANTILE = 0.95


def _samples() -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in metrics.registry().collect():
        for sample in family.samples:
            found[sample.name].append((dict(sample.labels), float(sample.value)))
    return found


def _latency(buckets: list[tuple[dict[str, str], float]], method: str) -> float:
    """The QUANTILE of a method's latency: the upper bound of the bucket it falls in, seconds."""
    mine = sorted(
        (float(labels["le"]), value) for labels, value in buckets if labels.get("grpc_method") == method
    )
    total = mine[-1][1] if mine else 0.0
    return next((bound for bound, count in mine if total and count >= QUANTILE * total), float("nan"))


def calls_answered() -> float:
    return sum(value for _, value in _samples()["grpc_server_handled_total"])


def calls_table() -> pd.DataFrame:
    found = _samples()
    rows: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for labels, value in found["grpc_server_handled_total"]:
        row = rows[labels["grpc_service"].rsplit(".", 1)[-1] + "/" + labels["grpc_method"]]
        row["calls"] += value
        row["errors"] += 0 if labels["grpc_code"] == "OK" else value
    for labels, value in found["grpc_server_handling_seconds_sum"]:
        rows[labels["grpc_service"].rsplit(".", 1)[-1] + "/" + labels["grpc_method"]]["seconds"] += value
    frame = pd.DataFrame([{"rpc": rpc, **values} for rpc, values in sorted(rows.items())])
    if frame.empty:
        return pd.DataFrame(columns=["rpc", "calls", "errors", "mean ms", "p95 ms"])
    buckets = found["grpc_server_handling_seconds_bucket"]
    frame["mean ms"] = 1000 * frame["seconds"] / frame["calls"].where(frame["calls"] > 0)
    frame["p95 ms"] = [1000 * _latency(buckets, rpc.split("/")[1]) for rpc in frame["rpc"]]
    return frame.drop(columns="seconds").astype({"calls": int, "errors": int})


def _versions_phrase(count: int) -> str:
    if count == 0:
        return "No other version"
    return f"{count} more version{'s' if count > 1 else ''}"


def overview(db: duckdb.DuckDBPyConnection) -> list[Section]:
    found = _samples()
    versions = pd.DataFrame(
        [{"kind": s["kind"], "version": s["version"]} for s, v in found["shifu_version_loaded"] if v == 1]
    )
    in_experiments = sum(v for _, v in found["shifu_experiment_versions_loaded"])
    catalog = sum(v for _, v in found["shifu_catalog_items"])
    calls = calls_table()
    warnings = pd.DataFrame(
        [{"warning": s["code"], "count": int(v)} for s, v in found["shifu_recommend_warnings_total"]]
        + [
            {"warning": f"{s['kind']} version refused", "count": int(v)}
            for s, v in found["shifu_version_reloads_total"]
            if s["result"] == "refused"
        ],
        columns=["warning", "count"],
    )
    per_minute = data.events_per_minute(db)
    series = {str(t): (g["minute"], g["events"]) for t, g in per_minute.groupby("event_type")}
    return [
        Section(
            "Versions serving",
            f"{_versions_phrase(int(in_experiments))} loaded for experiments' arms; "
            f"{int(catalog):,} items in the live catalog.",
            (),
            (table(versions if len(versions) else pd.DataFrame({"kind": [], "version": []})),),
        ),
        Section(
            "Calls and errors per RPC",
            "Since the process started (every worker's, summed).",
            (
                charts.bars(
                    calls["rpc"].tolist(),
                    calls["calls"].tolist(),
                    "calls (orange: with errors)",
                    (calls["errors"] > 0).tolist(),
                )
                if len(calls)
                else charts.no_data("no calls yet"),
            ),
            (table(calls),),
        ),
        Section(
            "Events per minute",
            "The last two hours of the event log, by type.",
            (charts.lines(series, "events per minute") if series else charts.no_data("no events yet"),),
            (),
        ),
        Section(
            "Warnings",
            "Request values the model did not recognise, and versions refused.",
            (),
            (table(warnings),),
            warning=bool(warnings["count"].sum()),
        ),
    ]


ORDER = "order (* moved here by the re-plan)"


def dispatch(plans: list[Solved]) -> list[Section]:
    summary = pd.DataFrame(
        [
            {
                "answered": pd.Timestamp(s.at, unit="s", tz="UTC"),
                "mode": s.problem.options.mode.value,
                "jobs": len(s.problem.jobs),
                "technicians": len(s.problem.technicians),
                "assigned": len(s.plan.assignments),
                "unassigned": len(s.plan.unassigned),
                "moved": sum(a.reassigned for a in s.plan.assignments),
                "held, left out": s.plan.reassigned - sum(a.reassigned for a in s.plan.assignments),
                "status": s.plan.status.value,
                "travel km": s.plan.travel_km,
                "solve ms": s.plan.solve_ms,
            }
            for s in plans
        ],
        columns=[
            "answered",
            "mode",
            "jobs",
            "technicians",
            "assigned",
            "unassigned",
            "moved",
            "held, left out",
            "status",
            "travel km",
            "solve ms",
        ],
    )
    latest = [
        Section(
            "Latest plans",
            "The last AssignJobs answers of this process, newest first. Moved: jobs a re-plan gave to "
            "another technician than the one holding them; held, left out: held jobs it left out.",
            (charts.no_data("no plan yet"),) if not plans else (),
            (table(summary),),
        )
    ]
    if not plans:
        return latest
    newest = plans[0]
    unassigned = pd.DataFrame(
        [
            {"job": u.job_id, "reason": u.reason.value.replace("_", " "), "detail": u.detail}
            for u in newest.plan.unassigned
        ],
        columns=["job", "reason", "detail"],
    )
    moved = {a.job_id for a in newest.plan.assignments if a.reassigned}
    routes = pd.DataFrame(
        [
            {
                "technician": r.technician_id,
                "day": _clock(r.start, "%Y-%m-%d") if r.start is not None else "",
                "hours (UTC)": f"{_clock(r.start)}–{_clock(r.end)}" if r.start is not None and r.end else "",
                "jobs": len(r.job_ids),
                "travel km": round(r.travel_km, 1),
                "breaks (UTC)": ", ".join(f"{_clock(b.start)} {b.duration_minutes:g} min" for b in r.breaks),
                ORDER: " → ".join(f"{j}*" if j in moved else j for j in r.job_ids),
            }
            for r in newest.plan.routes
        ],
        columns=["technician", "day", "hours (UTC)", "jobs", "travel km", "breaks (UTC)", ORDER],
    )  # fmt: skip
    return [
        *latest,
        Section(
            "Routes of the newest plan",
            "Each technician from home through the jobs in their order; red crosses: jobs left unassigned; "
            f"orange rings: the {len(moved)} job(s) the re-plan moved to another technician.",
            (route_map(newest),),
            (table(routes, limit=200),),
        ),
        Section(
            "The day, technician by technician",
            "Work at each job (blue, orange when the re-plan moved it there) and breaks (grey); the gaps "
            f"are travel and waiting. The first {TIMELINE_ROWS} technicians with a day; the table lists all.",
            (day_timeline(newest),),
            (),
        ),
        Section(
            "Unassigned jobs",
            "Why each job was left out.",
            (),
            (table(unassigned, limit=200),),
            warning=bool(len(unassigned)),
        ),
    ]


def _by_technician(solved: Solved) -> dict[str, list]:
    routes: dict[str, list] = defaultdict(list)
    for assignment in solved.plan.assignments:
        routes[assignment.technician_id].append(assignment)
    return dict(sorted(routes.items()))


def route_map(solved: Solved) -> str:
    """Routes drawn from coordinates (longitude east, latitude north), no tiles: the plan is the map."""
    jobs = {j.job_id: j.location for j in solved.problem.jobs}
    homes = {t.technician_id: t.location for t in solved.problem.technicians}

    def draw(axes: charts.Axes) -> None:
        for k, (tech, assignments) in enumerate(_by_technician(solved).items()):
            stops: list[GeoPoint] = [
                homes[tech],
                *(jobs[a.job_id] for a in sorted(assignments, key=lambda a: a.sequence)),
            ]
            colour = charts.PALETTE[k % len(charts.PALETTE)]
            axes.plot(
                [p.lng for p in stops], [p.lat for p in stops], "-o", color=colour, markersize=3, linewidth=1
            )
            axes.plot(stops[0].lng, stops[0].lat, "s", color=colour, markersize=7)
        moved = [jobs[a.job_id] for a in solved.plan.assignments if a.reassigned]
        axes.plot([p.lng for p in moved], [p.lat for p in moved], "o", mfc="none", mec=charts.PALETTE[1],
                  markersize=10, mew=2)  # fmt: skip
        left = [jobs[u.job_id] for u in solved.plan.unassigned]
        axes.plot([p.lng for p in left], [p.lat for p in left], "x", color="#d62728", markersize=8, mew=2)
        idle = [p for t, p in homes.items() if t not in {a.technician_id for a in solved.plan.assignments}]
        axes.plot([p.lng for p in idle], [p.lat for p in idle], "s", color="#bbb", markersize=5)
        # A degree of longitude is cos(latitude) of a degree of latitude: distances look true.
        axes.set_aspect(1 / max(0.2, math.cos(math.radians(solved.problem.technicians[0].location.lat))))
        axes.set_xlabel("longitude (squares: technicians' homes, grey: idle)")
        axes.set_ylabel("latitude")

    return charts.svg(draw, (8.0, 7.0))


def _clock(seconds: float | None, pattern: str = "%H:%M") -> str:
    return "" if seconds is None else pd.Timestamp(seconds, unit="s", tz="UTC").strftime(pattern)


TIMELINE_ROWS = 40  # technicians drawn; the table lists them all


def day_timeline(solved: Solved) -> str:
    """Each route's work and breaks on one time axis (UTC hours), a row per technician's day."""
    duration = {j.job_id: 60.0 * j.duration_minutes for j in solved.problem.jobs}
    arrival = {a.job_id: a for a in solved.plan.assignments}
    routes = [r for r in solved.plan.routes if r.job_ids or r.breaks][:TIMELINE_ROWS]
    if not routes:
        return charts.no_data("no route in this plan")

    def draw(axes: charts.Axes) -> None:
        origin = min(r.start for r in routes if r.start is not None) if any(r.start for r in routes) else 0.0
        for row, route in enumerate(routes):
            for job_id in route.job_ids:
                a = arrival[job_id]
                if a.arrival is None:
                    continue
                colour = charts.PALETTE[1] if a.reassigned else charts.PALETTE[0]
                axes.broken_barh([((a.arrival - origin) / 3600, duration[job_id] / 3600)], (row - 0.4, 0.8),
                                 color=colour)  # fmt: skip
            for pause in route.breaks:
                span = ((pause.start - origin) / 3600, pause.duration_minutes / 60)
                axes.broken_barh([span], (row - 0.4, 0.8), color="#999", hatch="//")
        axes.set_yticks(range(len(routes)), [r.technician_id for r in routes], fontsize=7)
        axes.invert_yaxis()
        axes.set_xlabel(f"hours from {_clock(origin, '%Y-%m-%d %H:%M')} UTC")

    return charts.svg(draw, (8.0, max(2.5, 0.22 * len(routes) + 1.0)))


def tiers(directory: Path) -> list[Section]:
    version, frame = data.csv_of(directory, "technicians.csv")
    if not version:
        return [
            Section(
                "No tier table",
                f"No version in {directory}.",
                (charts.no_data("no tiers"),),
                (table(pd.DataFrame({"tier": []})),),
            )
        ]
    latest = frame[frame["period"] == frame["period"].max()]
    counts = latest.groupby("tier").size()
    by_city = latest.pivot_table(
        index="city", columns="tier", values="technician_id", aggfunc="count", fill_value=0
    )
    segments = latest.groupby("segment").size().rename("technicians").reset_index()
    return [
        Section(
            f"Tiers in {latest['period'].max()} (version {version})",
            f"{len(latest):,} technicians.",
            (charts.bars([f"tier {t}" for t in counts.index], counts.tolist(), "technicians"),),
            (
                table(by_city.reset_index().rename(columns=lambda c: f"tier {c}" if c != "city" else c)),
                table(segments),
            ),
        ),
        Section(
            "Technicians",
            "The latest period, best tier first.",
            (),
            (table(latest.sort_values(["tier", "technician_id"], ascending=[False, True]), limit=100),),
        ),
    ]


def supply_demand(directory: Path) -> list[Section]:
    version, frame = data.csv_of(directory, "supply_demand.csv")
    if not version:
        return [
            Section(
                "No supply-demand report",
                f"No version in {directory}.",
                (charts.no_data("no report"),),
                (table(pd.DataFrame({"city": []})),),
            )
        ]
    frame["date"] = pd.to_datetime(frame["date"])
    per_city = frame.groupby(["city", "date"], as_index=False)["demand_ratio"].max()
    series = {str(c): (g["date"], g["demand_ratio"]) for c, g in per_city.groupby("city")}
    risk = frame[frame["orders_at_risk"] | frame["technicians_at_risk"]]
    totals = frame.groupby(["city", "category"], as_index=False)[
        ["created", "completed", "never_taken"]
    ].sum()
    return [
        Section(
            f"Demand over capacity (version {version})",
            "Per city, the highest category's demand ratio per "
            "day (above 1: more work due than the technicians can do).",
            (charts.lines(series, "demand / capacity"),),
            (table(totals),),
        ),
        Section(
            "At risk",
            "Days and categories where orders or technicians are at risk.",
            (),
            (table(risk, limit=100),),
            warning=bool(len(risk)),
        ),
    ]
