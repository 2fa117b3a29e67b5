"""Ranking the technicians for one job by the same cost terms the assignment uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.dispatch import eligibility
from models.dispatch.problem import Job, Options, Problem, Reason, Technician, Unassigned, validate
from models.errors import FieldError


@dataclass(frozen=True)
class RankedTechnician:
    technician_id: str
    score: float  # the negated cost: higher is better
    travel_km: float


@dataclass(frozen=True)
class Ranking:
    technicians: list[RankedTechnician]
    why_nobody: Unassigned | None


def rank(job: Job, technicians: tuple[Technician, ...], options: Options, limit: int = 0) -> Ranking:
    """Qualified technicians, cheapest first (ties by id, so equal inputs give equal answers)."""
    problem = Problem(jobs=(job,), technicians=technicians, options=options)
    try:
        validate(problem)
    except FieldError as error:
        # The request holds one `job`, not a list of jobs: name the field as the caller knows it.
        raise FieldError(error.field.replace("jobs[0]", "job", 1), error.message) from None
    elig = eligibility.compute(problem)
    if 0 in elig.reasons:
        return Ranking([], elig.reasons[0])
    candidates = np.flatnonzero(elig.feasible[0] & (elig.capacity > 0))
    if candidates.size == 0:
        return Ranking(
            [], Unassigned(job.job_id, Reason.CAPACITY_EXHAUSTED, "every qualified technician is full")
        )
    load = np.array([technicians[t].assigned_jobs for t in candidates], dtype=float)
    cost = elig.pair_cost[0, candidates] + options.weights.balance * load
    ids = [technicians[t].technician_id for t in candidates]
    order = sorted(range(candidates.size), key=lambda i: (cost[i], ids[i]))
    if limit:
        order = order[:limit]
    return Ranking(
        [RankedTechnician(ids[i], -float(cost[i]), float(elig.km[0, candidates[i]])) for i in order],
        None,
    )
