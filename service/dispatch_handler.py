"""DispatchService: requests to dispatch problems and plans to responses."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from models.dispatch import problem as dp
from models.dispatch.rank import rank
from models.dispatch.solver import solve
from models.errors import FieldError
from service.errors import RpcFailure, rpc
from service.pb.shifu.v1 import common_pb2, dispatch_pb2_grpc
from service.pb.shifu.v1 import dispatch_pb2 as pb
from service.registry import VersionRegistry

DEFAULT_TIER = 1
DEFAULT_SPEED_KMH = 30.0
MAX_RANK_LIMIT = 1000
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
_REASONS = {reason: pb.UnassignedReason.Value(f"UNASSIGNED_REASON_{reason.name}") for reason in dp.Reason}
_STATUSES = {status: pb.SolveStatus.Value(f"SOLVE_STATUS_{status.name}") for status in dp.Status}


def _seconds(stamp: Timestamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


def _window(message: pb.Job | pb.Technician, name: str, path: str) -> dp.Window | None:
    if not message.HasField(name):
        return None
    window: common_pb2.TimeWindow = getattr(message, name)
    if not (window.HasField("start") and window.HasField("end")):
        raise FieldError(f"{path}.{name}", "start and end must both be set")
    return dp.Window(_seconds(window.start), _seconds(window.end))


def _point(message: pb.Job | pb.Technician, path: str) -> dp.GeoPoint:
    if not message.HasField("location"):
        raise FieldError(f"{path}.location", "is required")
    return dp.GeoPoint(message.location.lat, message.location.lng)


def to_job(message: pb.Job, path: str) -> dp.Job:
    return dp.Job(
        job_id=message.job_id,
        location=_point(message, path),
        required_skills=frozenset(message.required_skills),
        duration_minutes=float(message.duration_minutes),
        window=_window(message, "time_window", path),
        priority=message.priority,
        demand=message.demand,
        pinned_technician_id=message.pinned_technician_id
        if message.HasField("pinned_technician_id")
        else None,
    )


def to_technician(
    message: pb.Technician, path: str, computed_tier: Callable[[str], int | None] = lambda _: None
) -> dp.Technician:
    """A tier of 0 (unset) takes the technician's computed tier, else DEFAULT_TIER."""
    if message.tier < 0:
        raise FieldError(f"{path}.tier", f"must be >= 0, got {message.tier}")
    return dp.Technician(
        technician_id=message.technician_id,
        location=_point(message, path),
        skills=frozenset(message.skills),
        tier=message.tier or computed_tier(message.technician_id) or DEFAULT_TIER,
        max_jobs=message.max_jobs,
        shift=_window(message, "shift", path),
        vehicle_capacity=message.vehicle_capacity,
        assigned_jobs=message.assigned_jobs,
    )


def to_options(message: pb.AssignOptions, time_limit_s: float) -> dp.Options:
    if message.mode not in _MODES:
        raise FieldError("options.mode", f"unknown mode {message.mode}")
    if message.capacity not in _CAPACITIES:
        raise FieldError("options.capacity", f"unknown capacity {message.capacity}")
    weights = {
        name: getattr(message.weights, name)
        for name in ("travel_per_km", "drop_penalty", "drop_penalty_per_priority", "tier", "balance")
        if message.weights.HasField(name)
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
    nanos = round(seconds * 1e9)
    return Timestamp(seconds=nanos // 10**9, nanos=nanos % 10**9)


def to_response(plan: dp.Plan) -> pb.AssignJobsResponse:
    return pb.AssignJobsResponse(
        assignments=[
            pb.Assignment(
                job_id=a.job_id,
                technician_id=a.technician_id,
                sequence=a.sequence,
                arrival=_timestamp(a.arrival) if a.arrival is not None else None,
                travel_km=a.travel_km,
            )
            for a in plan.assignments
        ],
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


class DispatchHandler(dispatch_pb2_grpc.DispatchServiceServicer):
    def __init__(self, default_time_limit_ms: int, tiers: VersionRegistry) -> None:
        self._default_time_limit_ms = default_time_limit_ms
        self._tiers = tiers

    def _technicians(self, messages) -> tuple[dp.Technician, ...]:
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
            jobs=tuple(to_job(j, f"jobs[{i}]") for i, j in enumerate(request.jobs)),
            technicians=self._technicians(request.technicians),
            options=self._options(request.options, context),
        )
        return to_response(solve(problem))

    @rpc
    def RankTechnicians(
        self, request: pb.RankTechniciansRequest, context: grpc.ServicerContext
    ) -> pb.RankTechniciansResponse:
        if not request.HasField("job"):
            raise FieldError("job", "is required")
        if not 0 <= request.limit <= MAX_RANK_LIMIT:
            raise FieldError("limit", f"must be between 0 (all) and {MAX_RANK_LIMIT}, got {request.limit}")
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
