"""OfferSlots: every window offered is a promise AssignJobs keeps, on random days with breaks, in both
modes; refused windows say why."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models.dispatch import offer_slots
from models.dispatch.problem import GeoPoint, Job, Mode, Options, Problem, Window
from models.dispatch.solver import solve
from models.errors import FieldError
from tests.support import DAY, HOUR, check, random_day, with_breaks
from tests.support.days import km_between


def planned_day(seed: int, mode: Mode, ending: bool = False) -> Problem:
    """A random day with breaks, planned, its placed jobs pinned where the plan put them; with `ending`,
    every other technician's day ends 3 km south-east of where it starts (a re-plan's, going home)."""
    jobs, techs = random_day(seed, n_jobs=30, n_techs=6)
    if ending:
        techs = tuple(
            dataclasses.replace(t, end_location=GeoPoint(t.location.lat - 0.02, t.location.lng + 0.02))
            if k % 2 == 0
            else t
            for k, t in enumerate(techs)
        )
    options = Options(mode=mode, time_limit_s=1.0, max_radius_km=12.0)
    first = solve(Problem(jobs, with_breaks(techs), options))
    holder = {a.job_id: a.technician_id for a in first.assignments}
    order = {a.job_id: (a.technician_id, a.sequence) for a in first.assignments}
    kept = sorted((j for j in jobs if j.job_id in holder), key=lambda j: order[j.job_id])
    planned = tuple(dataclasses.replace(j, pinned_technician_id=holder[j.job_id]) for j in kept)
    return Problem(planned, with_breaks(techs), options)


def new_job(seed: int) -> Job:
    rng = np.random.default_rng(seed + 100)
    return Job(
        job_id="booking",
        location=GeoPoint(31.23 + float(rng.uniform(-0.05, 0.05)), 121.47 + float(rng.uniform(-0.05, 0.05))),
        required_skills=frozenset({str(rng.choice(["install", "repair", "clean"]))}),
        duration_minutes=60.0,
    )


WINDOWS = [Window(DAY + h * HOUR, DAY + (h + 2) * HOUR) for h in (8, 10, 12, 14, 16)]


@pytest.mark.parametrize(
    ("mode", "ending"),
    [(Mode.ASSIGN, False), (Mode.ROUTE, False), (Mode.ROUTE, True)],
    ids=["assign", "route", "route-ending-elsewhere"],
)
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_every_window_offered_is_kept_by_assign_jobs(mode: Mode, ending: bool, seed: int) -> None:
    plan = planned_day(seed, mode, ending)
    job = new_job(seed)
    offers = offer_slots.offer(job, WINDOWS, plan)
    assert [o.window for o in offers] == WINDOWS
    for o in offers:
        assert o.detail
        if not o.available:
            assert o.technician_id is None
            continue
        booked = dataclasses.replace(job, window=o.window)
        confirm = Problem((*plan.jobs, booked), plan.technicians, plan.options)
        answer = solve(confirm)
        check(confirm, answer)
        placed = {a.job_id for a in answer.assignments}
        assert booked.job_id in placed, (o, answer.unassigned)
        assert {j.job_id for j in plan.jobs} <= placed, "every planned job keeps its technician"


def test_offers_and_refusals_both_happen_and_a_full_day_refuses() -> None:
    answers = [o.available for seed in (1, 2, 3, 4) for o in offer_slots.offer(new_job(seed), WINDOWS,
               planned_day(seed, Mode.ASSIGN))]  # fmt: skip
    assert any(answers) and not all(answers)
    plan = planned_day(1, Mode.ASSIGN)
    full = dataclasses.replace(plan, technicians=tuple(dataclasses.replace(t, max_jobs=1, assigned_jobs=1)
                                                       for t in plan.technicians))  # fmt: skip
    refused = offer_slots.offer(new_job(1), WINDOWS, full)
    assert not any(o.available for o in refused)
    assert all("full" in o.detail or "qualified" in o.detail or "radius" in o.detail for o in refused)


def test_a_planned_job_without_its_technician_is_refused_by_name() -> None:
    plan = planned_day(1, Mode.ASSIGN)
    loose = dataclasses.replace(
        plan, jobs=(dataclasses.replace(plan.jobs[0], pinned_technician_id=None), *plan.jobs[1:])
    )
    with pytest.raises(FieldError) as error:
        offer_slots.validate(new_job(1), WINDOWS, loose)
    assert error.value.field == "jobs[0]"
    with pytest.raises(FieldError) as error:
        offer_slots.validate(new_job(1), [], plan)
    assert error.value.field == "windows"


@pytest.mark.parametrize(
    ("mode", "ending"), [(Mode.ASSIGN, False), (Mode.ROUTE, True)], ids=["assign", "route"]
)
def test_matrices_cover_the_new_job_after_the_jobs_and_a_wrong_size_is_refused_by_name(
    mode: Mode, ending: bool
) -> None:
    plan = planned_day(2, mode, ending)
    job = new_job(2)
    ends = [t.end_location for t in plan.technicians if t.end_location is not None]
    points = [t.location for t in plan.technicians] + [j.location for j in plan.jobs] + [job.location] + ends
    km = np.array([[km_between(a, b) for b in points] for a in points])
    with_matrix = dataclasses.replace(plan, options=dataclasses.replace(plan.options, distance_km=km.ravel()))
    offer_slots.validate(job, WINDOWS, with_matrix)
    by_matrix = offer_slots.offer(job, WINDOWS, with_matrix)
    by_haversine = offer_slots.offer(job, WINDOWS, plan)
    assert [o.available for o in by_matrix] == [o.available for o in by_haversine]
    assert all(
        abs(a.extra_travel_km - b.extra_travel_km) < 1e-6
        for a, b in zip(by_matrix, by_haversine, strict=True)
    )
    short = dataclasses.replace(
        plan, options=dataclasses.replace(plan.options, distance_km=km[:-1, :-1].ravel())
    )
    with pytest.raises(FieldError) as error:
        offer_slots.validate(job, WINDOWS, short)
    assert error.value.field == "options.distance_matrix.values"
