"""Technicians with several shifts (a multi-day request) as the solvers see them: one technician per
shift, each a day of its own (its own route from the technician's location, its own max_jobs), holding
the breaks whose windows start in it. The plan is answered under the request's ids again; each route
keeps its shift, so that a person reads which day it is."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from models.dispatch.problem import Plan, Problem, Technician, holds


def one_each(problem: Problem) -> Problem:
    """The problem with a technician per shift (unchanged when nobody has a list of shifts)."""
    if not any(t.shifts for t in problem.technicians):
        return problem
    techs: list[Technician] = []
    source: list[int] = []
    for i, tech in enumerate(problem.technicians):
        if not tech.shifts:
            techs.append(tech)
            source.append(i)
            continue
        for k, shift in enumerate(sorted(tech.shifts, key=lambda w: w.start)):
            held = tuple(b for b in tech.breaks if holds(shift, b))
            techs.append(
                replace(
                    tech,
                    technician_id=f"{tech.technician_id} (shift {k + 1})",
                    shift=shift,
                    shifts=(),
                    breaks=held,
                    shift_of=tech.technician_id,
                )
            )
            source.append(i)
    options = problem.options
    n_tech, n = len(problem.technicians), len(problem.technicians) + len(problem.jobs)
    nodes = np.concatenate([np.array(source, dtype=np.int64), n_tech + np.arange(len(problem.jobs))])

    def cut(matrix: np.ndarray | None) -> np.ndarray | None:
        return None if matrix is None else matrix.reshape(n, n)[np.ix_(nodes, nodes)].ravel()

    options = replace(options, distance_km=cut(options.distance_km), duration_min=cut(options.duration_min))
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
