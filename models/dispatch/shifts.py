"""Technicians with several shifts (a multi-day request) as the solvers see them: one technician per
shift, each a day of its own (its own route from the technician's location, its own max_jobs), holding
the breaks whose windows start in it. The plan is answered under the request's ids again; each route
keeps its shift, so that a person reads which day it is."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from models.dispatch.problem import Plan, Problem, Technician, holds, n_locations
from models.dispatch.travel import cut, end_nodes


def one_each(problem: Problem) -> Problem:
    """The problem with a technician per shift (unchanged when nobody has a list of shifts). A shift
    after the first starts where the day before ended (the end location, when there is one)."""
    if not any(t.shifts for t in problem.technicians):
        return problem
    ends = end_nodes(problem)
    techs: list[Technician] = []
    starts: list[int] = []  # each new technician's location, as an index of the request's
    source: list[int] = []  # the request's technician each new one is a shift of
    for i, tech in enumerate(problem.technicians):
        if not tech.shifts:
            techs.append(tech)
            starts.append(i)
            source.append(i)
            continue
        for k, shift in enumerate(sorted(tech.shifts, key=lambda w: w.start)):
            held = tuple(b for b in tech.breaks if holds(shift, b))
            home = tech.end_location if k > 0 and tech.end_location is not None else None
            techs.append(
                replace(
                    tech,
                    technician_id=f"{tech.technician_id} (shift {k + 1})",
                    location=home or tech.location,
                    shift=shift,
                    shifts=(),
                    breaks=held,
                    shift_of=tech.technician_id,
                )
            )
            starts.append(int(ends[i]) if home else i)
            source.append(i)
    finish = [int(ends[i]) for t, i in zip(techs, source, strict=True) if t.end_location is not None]
    n_tech = len(problem.technicians)
    nodes = np.concatenate(
        [
            np.array(starts, dtype=np.int64),
            n_tech + np.arange(len(problem.jobs)),
            np.array(finish, dtype=np.int64),
        ]
    )
    options = cut(problem.options, n_locations(problem), nodes)
    return replace(problem, technicians=tuple(techs), options=options)


def as_requested(problem: Problem, plan: Plan) -> Plan:
    """The plan of `one_each(...)` under the request's technician ids."""
    person = {t.technician_id: t.person for t in problem.technicians if t.shift_of is not None}
    if not person:
        return plan
    return replace(
        plan,
        assignments=[
            replace(a, technician_id=person.get(a.technician_id, a.technician_id)) for a in plan.assignments
        ],
        routes=tuple(
            replace(r, technician_id=person.get(r.technician_id, r.technician_id)) for r in plan.routes
        ),
    )
