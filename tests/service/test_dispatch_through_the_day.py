"""End to end over a real server: a day with lunch breaks planned and read whole (routes, breaks), the day
re-planned at 11:00 with urgent jobs keeping most jobs where they were, and OfferSlots' windows kept by
an AssignJobs that pins the plan; bad requests refused naming the field."""

from __future__ import annotations

import dataclasses
import itertools

import grpc
import numpy as np
import pytest
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from models.dispatch.problem import GeoPoint
from service.pb.shifu.v1 import common_pb2, dispatch_pb2_grpc
from service.pb.shifu.v1 import dispatch_pb2 as dpb
from tests.support.days import km_between
from training import demo

H = 3600


@pytest.fixture(scope="module")
def dispatch(channel: grpc.Channel) -> dispatch_pb2_grpc.DispatchServiceStub:
    return dispatch_pb2_grpc.DispatchServiceStub(channel)


def window(start: float, end: float) -> common_pb2.TimeWindow:
    return common_pb2.TimeWindow(start=Timestamp(seconds=int(start)), end=Timestamp(seconds=int(end)))


@pytest.fixture(scope="module")
def day() -> dpb.AssignJobsRequest:
    """A small demo day (60 jobs, 16 technicians, up to 8 jobs each) with 30 minutes of lunch starting
    between 12:00 and 13:30."""
    size = dataclasses.replace(demo.DemoSize(), jobs=60, technicians=16)
    request = json_format.ParseDict(
        demo.dispatch_day(np.random.default_rng(3), size, True), dpb.AssignJobsRequest()
    )
    midnight = (
        min(j.time_window.start.seconds for j in request.jobs) - 8 * H
    )  # the first windows open at 8:00
    for tech in request.technicians:
        tech.max_jobs = 8  # room left for a booking
        tech.breaks.add(window=window(midnight + 12 * H, midnight + 13.5 * H), duration_minutes=30)
    request.options.time_limit_ms = 1000
    return request


def test_a_day_with_lunch_breaks_reads_whole_with_no_work_in_a_break(
    dispatch: dispatch_pb2_grpc.DispatchServiceStub, day: dpb.AssignJobsRequest
) -> None:
    answer = dispatch.AssignJobs(day, timeout=30)
    assert answer.assignments
    routes = {r.technician_id: r for r in answer.routes}
    assert set(routes) == {t.technician_id for t in day.technicians}, "every technician has lunch"
    jobs = {j.job_id: j for j in day.jobs}
    for route in routes.values():
        assert len(route.breaks) == 1 and route.breaks[0].duration_minutes == 30
        lunch = route.breaks[0].start.seconds
        assert route.start.seconds <= lunch and lunch + 1800 <= route.end.seconds
        for a in answer.assignments:
            if a.technician_id == route.technician_id:
                done = a.arrival.seconds + 60 * jobs[a.job_id].duration_minutes
                assert done <= lunch + 1 or a.arrival.seconds >= lunch + 1800 - 1, a.job_id
        mine = sorted(
            (a for a in answer.assignments if a.technician_id == route.technician_id),
            key=lambda a: a.sequence,
        )
        assert list(route.job_ids) == [a.job_id for a in mine]


def test_a_re_plan_with_current_technicians_moves_few_jobs(
    dispatch: dispatch_pb2_grpc.DispatchServiceStub, day: dpb.AssignJobsRequest
) -> None:
    morning = dispatch.AssignJobs(day, timeout=30)
    holder = {a.job_id: a.technician_id for a in morning.assignments}
    replan = dpb.AssignJobsRequest()
    replan.CopyFrom(day)
    del replan.jobs[:]
    for job in day.jobs:
        if job.job_id in holder:
            replan.jobs.append(job)
            replan.jobs[-1].current_technician_id = holder[job.job_id]
    urgent = replan.jobs.add(
        job_id="urgent", required_skills=[day.jobs[0].required_skills[0]], duration_minutes=30, priority=3
    )
    urgent.location.CopyFrom(day.jobs[0].location)
    urgent.time_window.CopyFrom(day.jobs[0].time_window)
    scratch = dpb.AssignJobsRequest()
    scratch.CopyFrom(replan)
    for job in scratch.jobs:
        job.ClearField("current_technician_id")

    kept, fresh = dispatch.AssignJobs(replan, timeout=30), dispatch.AssignJobs(scratch, timeout=30)
    moved = [a.job_id for a in kept.assignments if a.reassigned]
    assert moved == [
        a.job_id for a in kept.assignments if a.job_id in holder and a.technician_id != holder[a.job_id]
    ]
    gone = sum(1 for j in holder if j not in {a.job_id for a in kept.assignments})
    assert kept.reassigned_jobs == len(moved) + gone
    assert kept.reassigned_jobs <= 0.1 * len(holder)
    assert not any(a.reassigned for a in fresh.assignments), "no current technician, no move counted"
    moved_fresh = sum(
        1 for a in fresh.assignments if a.job_id in holder and a.technician_id != holder[a.job_id]
    )
    assert moved_fresh > kept.reassigned_jobs
    assert len(kept.assignments) >= len(fresh.assignments) - 1


def test_a_running_day_re_planned_from_where_technicians_are_ends_each_day_at_home(
    dispatch: dispatch_pb2_grpc.DispatchServiceStub, day: dpb.AssignJobsRequest
) -> None:
    morning = dispatch.AssignJobs(day, timeout=30)
    first = {r.technician_id: r.job_ids[0] for r in morning.routes if r.job_ids}
    jobs = {j.job_id: j for j in day.jobs}
    replan = dpb.AssignJobsRequest()
    replan.CopyFrom(day)
    del replan.jobs[:]
    replan.jobs.extend(j for j in day.jobs if j.job_id not in set(first.values()))  # first jobs done
    for tech in replan.technicians:
        if tech.technician_id in first:  # where the first job was, home at the end of the day
            tech.end_location.CopyFrom(tech.location)
            tech.location.CopyFrom(jobs[first[tech.technician_id]].location)
    answer = dispatch.AssignJobs(replan, timeout=30)
    assert answer.routes
    techs = {t.technician_id: t for t in replan.technicians}
    places = {j.job_id: j.location for j in replan.jobs}
    ending = 0
    for route in answer.routes:
        if not route.job_ids:
            continue
        tech = techs[route.technician_id]
        end = tech.end_location if tech.HasField("end_location") else tech.location
        ending += tech.HasField("end_location")
        stops = [tech.location, *(places[j] for j in route.job_ids), end]
        km = sum(km_between(_point(a), _point(b)) for a, b in itertools.pairwise(stops))
        assert route.travel_km == pytest.approx(km, rel=1e-6), route.technician_id
    assert ending, "some re-planned day ends at home, away from where it starts"


def _point(location: common_pb2.GeoPoint) -> GeoPoint:
    return GeoPoint(location.lat, location.lng)


def test_offered_windows_are_kept_and_refusals_say_why(
    dispatch: dispatch_pb2_grpc.DispatchServiceStub, day: dpb.AssignJobsRequest
) -> None:
    morning = dispatch.AssignJobs(day, timeout=30)
    holder = {a.job_id: a.technician_id for a in morning.assignments}
    order = {a.job_id: (a.technician_id, a.sequence) for a in morning.assignments}
    offer = dpb.OfferSlotsRequest(technicians=day.technicians, options=day.options)
    for job in sorted((j for j in day.jobs if j.job_id in holder), key=lambda j: order[j.job_id]):
        offer.jobs.append(job)
        offer.jobs[-1].pinned_technician_id = holder[job.job_id]
    offer.job.CopyFrom(day.jobs[1])
    offer.job.job_id = "booking"
    offer.job.ClearField("time_window")
    midnight = min(j.time_window.start.seconds for j in day.jobs) - 8 * H
    for hour in (8, 10, 12, 14, 16, 22):
        offer.windows.append(window(midnight + hour * H, midnight + (hour + 2) * H))
    slots = dispatch.OfferSlots(offer, timeout=10).slots
    assert [s.window for s in slots] == list(offer.windows)
    assert any(s.available for s in slots)
    assert not slots[-1].available and slots[-1].detail, "22:00 is after every shift"
    for slot in slots:
        if not slot.available:
            continue
        confirm = dpb.AssignJobsRequest(jobs=offer.jobs, technicians=day.technicians, options=day.options)
        booked = confirm.jobs.add()
        booked.CopyFrom(offer.job)
        booked.time_window.CopyFrom(slot.window)
        answer = dispatch.AssignJobs(confirm, timeout=30)
        assert "booking" in {a.job_id for a in answer.assignments}, (slot, list(answer.unassigned)[-3:])
        assert len(answer.assignments) == len(confirm.jobs)


def test_bad_slot_requests_are_refused_naming_the_field(
    dispatch: dispatch_pb2_grpc.DispatchServiceStub, day: dpb.AssignJobsRequest
) -> None:
    cases = {
        "windows": dpb.OfferSlotsRequest(job=day.jobs[0], technicians=day.technicians),
        "job": dpb.OfferSlotsRequest(windows=[day.jobs[0].time_window]),
        "jobs[0]": dpb.OfferSlotsRequest(
            job=day.jobs[0], windows=[day.jobs[0].time_window], jobs=[day.jobs[1]]
        ),
    }
    for field, request in cases.items():
        with pytest.raises(grpc.RpcError) as error:
            dispatch.OfferSlots(request, timeout=10)
        assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details().startswith(field), error.value.details()
    broken = dpb.AssignJobsRequest()
    broken.CopyFrom(day)
    broken.technicians[0].breaks[0].duration_minutes = 0
    with pytest.raises(grpc.RpcError) as error:
        dispatch.AssignJobs(broken, timeout=10)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "technicians[0].breaks[0].duration_minutes" in error.value.details()
    lost = dpb.AssignJobsRequest()
    lost.CopyFrom(day)
    lost.technicians[2].end_location.lat = 123.0
    with pytest.raises(grpc.RpcError) as error:
        dispatch.AssignJobs(lost, timeout=10)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith("technicians[2].end_location.lat"), error.value.details()
