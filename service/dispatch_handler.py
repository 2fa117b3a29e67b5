"""DispatchService: requests to dispatch problems and plans to responses."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import cast

import grpc
import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from models.dispatch import offer_slots
from models.dispatch import problem as dp
from models.dispatch.problem import DEFAULT_SPEED_KMH, DEFAULT_TIER
from models.dispatch.rank import rank
from models.dispatch.solver import solve_valid
from models.dispatch.tiers import TierTable
from models.errors import FieldError
from service import limits, metrics, plan_log
from service.errors import RpcFailure, rpc
from service.pb.shifu.v1 import common_pb2, dispatch_pb2_grpc
from service.pb.shifu.v1 import dispatch_pb2 as pb
from service.registry import VersionRegistry
from service.solver_pool import PoolBusy, SolverPool, WorkerDied

log = logging.getLogger(__name__)
# Left of the caller's deadline for building and sending the answer.
DEADLINE_MARGIN_S = 0.05

_MODES = {
    pb.ASSIGN_MODE_UNSPECIFIED: dp.Mode.ASSIGN,
    pb.ASSIGN_MODE_ASSIGN: dp.Mode.ASSIGN,
    pb.ASSIGN_MODE_ROUTE: dp.Mode.ROUTE,
}
_CAPACITIES = {
    pb.ASSIGN_CAPACITY_UNSPECIFIED: dp.Capacity.COUNT,
    pb.ASSIGN_CAPACITY_COUNT: dp.Capacity.COUNT,
    pb.ASSIGN_CAPACITY_SHIFT_MINUTES: dp.Capacity.SHIFT_MINUTES,
}
_REASONS = {
    reason: cast(pb.UnassignedReason, pb.UnassignedReason.Value(f"UNASSIGNED_REASON_{reason.name}"))
    for reason in dp.Reason
}
_STATUSES = {
    status: cast(pb.SolveStatus, pb.SolveStatus.Value(f"SOLVE_STATUS_{status.name}")) for status in dp.Status
}


def _seconds(stamp: Timestamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


def _window(message: pb.Job | pb.Technician | pb.Break, name: str, path: str) -> dp.Window | None:
    if not message.HasField(name):
        return None
    return to_window(getattr(message, name), f"{path}.{name}")


def to_window(window: common_pb2.TimeWindow, path: str) -> dp.Window:
    if not (window.HasField("start") and window.HasField("end")):
        raise FieldError(path, "start and end must both be set")
    return dp.Window(_seconds(window.start), _seconds(window.end))


def _break(message: pb.Break, path: str) -> dp.Break:
    window = _window(message, "window", path)
    if window is None:
        raise FieldError(f"{path}.window", "is required")
    return dp.Break(window, float(message.duration_minutes))


def _point(message: pb.Job | pb.Technician, path: str) -> dp.GeoPoint:
    if not message.HasField("location"):
        raise FieldError(f"{path}.location", "is required")
    return dp.GeoPoint(message.location.lat, message.location.lng)


def to_job(message: pb.Job, path: str) -> dp.Job:
    return dp.Job(
        job_id=limits.text(message.job_id, f"{path}.job_id"),
        location=_point(message, path),
        required_skills=frozenset(
            limits.texts(message.required_skills, f"{path}.required_skills", limits.MAX_SKILLS)
        ),
        duration_minutes=float(message.duration_minutes),
        window=_window(message, "time_window", path),
        priority=message.priority,
        demand=message.demand,
        must_finish_in_window=message.must_finish_in_window,
        pinned_technician_id=_optional_id(message, "pinned_technician_id", path),
        current_technician_id=_optional_id(message, "current_technician_id", path),
    )


def _optional_id(message: pb.Job, name: str, path: str) -> str | None:
    return limits.text(getattr(message, name), f"{path}.{name}") if message.HasField(name) else None


def to_technician(
    message: pb.Technician, path: str, computed_tier: Callable[[str], int | None] = lambda _: None
) -> dp.Technician:
    """A tier of 0 (unset) takes the technician's computed tier, else DEFAULT_TIER."""
    if message.tier < 0:
        raise FieldError(f"{path}.tier", f"must be >= 0, got {message.tier}")
    return dp.Technician(
        technician_id=limits.text(message.technician_id, f"{path}.technician_id"),
        location=_point(message, path),
        skills=frozenset(limits.texts(message.skills, f"{path}.skills", limits.MAX_SKILLS)),
        tier=message.tier or computed_tier(message.technician_id) or DEFAULT_TIER,
        max_jobs=message.max_jobs,
        shift=_window(message, "shift", path),
        vehicle_capacity=message.vehicle_capacity,
        assigned_jobs=message.assigned_jobs,
        breaks=tuple(
            _break(b, f"{path}.breaks[{i}]") for i, b in enumerate(message.breaks[: dp.MAX_BREAKS + 1])
        ),
        shifts=tuple(
            to_window(w, f"{path}.shifts[{i}]") for i, w in enumerate(message.shifts[: dp.MAX_SHIFTS + 1])
        ),
        end_location=dp.GeoPoint(message.end_location.lat, message.end_location.lng)
        if message.HasField("end_location")
        else None,
    )


def to_options(message: pb.AssignOptions, time_limit_s: float) -> dp.Options:
    if message.mode not in _MODES:
        raise FieldError("options.mode", f"unknown mode {message.mode}")
    if message.capacity not in _CAPACITIES:
        raise FieldError("options.capacity", f"unknown capacity {message.capacity}")
    weights = {
        name: getattr(message.weights, name) for name in dp.WEIGHT_NAMES if message.weights.HasField(name)
    }
    if message.speed_kmh < 0:
        raise FieldError(
            "options.speed_kmh", f"must be >= 0 (0 means {DEFAULT_SPEED_KMH:g}), got {message.speed_kmh}"
        )
    if message.max_radius_km < 0:
        raise FieldError(
            "options.max_radius_km", f"must be >= 0 (0 means no limit), got {message.max_radius_km}"
        )
    return dp.Options(
        mode=_MODES[message.mode],
        time_limit_s=time_limit_s,
        distance_km=np.array(message.distance_matrix.values) if message.HasField("distance_matrix") else None,
        duration_min=np.array(message.duration_matrix.values)
        if message.HasField("duration_matrix")
        else None,
        speed_kmh=message.speed_kmh or DEFAULT_SPEED_KMH,
        max_radius_km=message.max_radius_km or None,
        weights=dp.Weights(**weights),
        capacity=_CAPACITIES[message.capacity],
    )


def time_limit(requested_ms: int, default_ms: int, remaining_s: float | None) -> float:
    """The smaller of the request's limit and the call's remaining deadline, in seconds."""
    if requested_ms < 0:
        raise FieldError("options.time_limit_ms", f"must be >= 0, got {requested_ms}")
    limit = (requested_ms or default_ms) / 1000.0
    if remaining_s is not None:
        if remaining_s - DEADLINE_MARGIN_S <= 0:
            raise RpcFailure(grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline leaves no time to solve")
        limit = min(limit, remaining_s - DEADLINE_MARGIN_S)
    return limit


def _timestamp(seconds: float) -> Timestamp:
    """To the second: people read these, and no plan is sharper than that."""
    return Timestamp(seconds=round(seconds))


def _time_window(window: dp.Window | None) -> common_pb2.TimeWindow | None:
    return (
        None
        if window is None
        else common_pb2.TimeWindow(start=_timestamp(window.start), end=_timestamp(window.end))
    )


def to_route(route: dp.Route) -> pb.Route:
    return pb.Route(
        technician_id=route.technician_id,
        shift=_time_window(route.shift),
        job_ids=list(route.job_ids),
        breaks=[
            pb.ScheduledBreak(start=_timestamp(b.start), duration_minutes=round(b.duration_minutes))
            for b in route.breaks
        ],
        start=_timestamp(route.start) if route.start is not None else None,
        end=_timestamp(route.end) if route.end is not None else None,
        travel_km=route.travel_km,
        work_minutes=route.work_minutes,
        wait_minutes=route.wait_minutes,
    )


def to_response(plan: dp.Plan) -> pb.AssignJobsResponse:
    return pb.AssignJobsResponse(
        assignments=[
            pb.Assignment(
                job_id=a.job_id,
                technician_id=a.technician_id,
                sequence=a.sequence + 1,  # people count stops from 1 (and 0 would vanish from JSON)
                arrival=_timestamp(a.arrival) if a.arrival is not None else None,
                travel_km=a.travel_km,
                reassigned=a.reassigned,
            )
            for a in plan.assignments
        ],
        routes=[to_route(r) for r in plan.routes],
        reassigned_jobs=plan.reassigned,
        unassigned=[
            pb.UnassignedJob(job_id=u.job_id, reason=_REASONS[u.reason], detail=u.detail)
            for u in plan.unassigned
        ],
        status=_STATUSES[plan.status],
        objective=plan.objective,
        solve_ms=plan.solve_ms,
        travel_km=plan.travel_km,
        objective_bound=plan.bound,
    )


def to_jobs(messages: Sequence[pb.Job]) -> tuple[dp.Job, ...]:
    limits.count(len(messages), "jobs", limits.MAX_JOBS)
    return tuple(to_job(j, f"jobs[{i}]") for i, j in enumerate(messages))


class DispatchHandler(dispatch_pb2_grpc.DispatchServiceServicer):
    """Solves run in the server's solver pool (worker processes); RankTechnicians, which runs no
    search, here."""

    def __init__(
        self,
        default_time_limit_ms: int,
        tiers: VersionRegistry[TierTable],
        pool: SolverPool,
        queue_seconds: float,
    ) -> None:
        self._default_time_limit_ms = default_time_limit_ms
        self._tiers = tiers
        self._pool = pool
        self._queue_seconds = queue_seconds

    def _technicians(self, messages: Sequence[pb.Technician]) -> tuple[dp.Technician, ...]:
        limits.count(len(messages), "technicians", limits.MAX_TECHNICIANS)
        table = self._tiers.current()
        computed = table.tier_of if table is not None else (lambda _: None)
        return tuple(to_technician(t, f"technicians[{i}]", computed) for i, t in enumerate(messages))

    def _options(self, message: pb.AssignOptions, context: grpc.ServicerContext) -> dp.Options:
        limit = time_limit(message.time_limit_ms, self._default_time_limit_ms, context.time_remaining())
        return to_options(message, limit)

    @rpc
    def AssignJobs(
        self, request: pb.AssignJobsRequest, context: grpc.ServicerContext
    ) -> pb.AssignJobsResponse:
        problem = dp.Problem(
            jobs=to_jobs(request.jobs),
            technicians=self._technicians(request.technicians),
            options=self._options(request.options, context),
        )
        dp.validate(problem)
        remaining = context.time_remaining()
        wait_s = (
            self._queue_seconds
            if remaining is None
            else min(self._queue_seconds, remaining - DEADLINE_MARGIN_S)
        )
        mode = problem.options.mode.value
        try:
            with self._pool.lane(wait_s) as lane:
                # The wait for a lane came out of the call's deadline, so the limit is taken again.
                limit = time_limit(
                    request.options.time_limit_ms, self._default_time_limit_ms, context.time_remaining()
                )
                problem = dataclasses.replace(
                    problem, options=dataclasses.replace(problem.options, time_limit_s=limit)
                )
                metrics.SOLVES_RUNNING.inc()
                started = time.perf_counter()
                try:
                    plan = solve_valid(problem, lane)
                finally:
                    metrics.SOLVES_RUNNING.dec()
                    metrics.SOLVE_SECONDS.labels(mode).observe(time.perf_counter() - started)
                # The solve as the caller sees it: from the start of the search to the plan in hand.
                plan = dataclasses.replace(plan, solve_ms=(time.perf_counter() - started) * 1000)
        except PoolBusy as busy:
            metrics.SOLVES.labels(mode, "busy").inc()
            raise RpcFailure(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"{busy}; retry later, or run more with --max-solves"
            ) from None
        except WorkerDied as died:
            metrics.SOLVES.labels(mode, "crashed").inc()
            log.error("dispatch solve failed: %s (%d jobs, %d technicians, mode %s)",
                      died, len(problem.jobs), len(problem.technicians), mode)  # fmt: skip
            raise RpcFailure(
                grpc.StatusCode.INTERNAL, f"{died} while solving this request; the server is unaffected"
            ) from None
        except TimeoutError:
            metrics.SOLVES.labels(mode, "hung").inc()
            log.error("dispatch solve did not finish after its time limit; its processes were stopped")
            raise RpcFailure(
                grpc.StatusCode.INTERNAL, "the solver did not finish after its time limit and was stopped"
            ) from None
        metrics.SOLVES.labels(mode, plan.status.value).inc()
        plan_log.PLANS.record(problem, plan)
        return to_response(plan)

    @rpc
    def RankTechnicians(
        self, request: pb.RankTechniciansRequest, context: grpc.ServicerContext
    ) -> pb.RankTechniciansResponse:
        if not request.HasField("job"):
            raise FieldError("job", "is required")
        limits.bounded(request.limit, "limit", limits.MAX_RANK_LIMIT, "all who qualify")
        ranking = rank(
            to_job(request.job, "job"),
            self._technicians(request.technicians),
            self._options(request.options, context),
            request.limit,
        )
        response = pb.RankTechniciansResponse(
            technicians=[
                pb.RankedTechnician(technician_id=r.technician_id, score=r.score, travel_km=r.travel_km)
                for r in ranking.technicians
            ]
        )
        if ranking.why_nobody is not None:
            response.reason = _REASONS[ranking.why_nobody.reason]
            response.detail = ranking.why_nobody.detail
        return response

    @rpc
    def OfferSlots(
        self, request: pb.OfferSlotsRequest, context: grpc.ServicerContext
    ) -> pb.OfferSlotsResponse:
        if not request.HasField("job"):
            raise FieldError("job", "is required")
        limits.count(len(request.windows), "windows", offer_slots.MAX_WINDOWS)
        job = to_job(request.job, "job")
        windows = [to_window(w, f"windows[{i}]") for i, w in enumerate(request.windows)]
        plan = dp.Problem(
            jobs=to_jobs(request.jobs),
            technicians=self._technicians(request.technicians),
            options=self._options(request.options, context),
        )
        offer_slots.validate(job, windows, plan)
        offers = offer_slots.offer(job, windows, plan)
        return pb.OfferSlotsResponse(
            slots=[
                pb.SlotOffer(
                    window=_time_window(o.window),
                    available=o.available,
                    technician_id=o.technician_id or "",
                    extra_travel_km=o.extra_travel_km,
                    arrival=_timestamp(o.arrival) if o.arrival is not None else None,
                    detail=o.detail,
                )
                for o in offers
            ]
        )
