"""The dispatch entry point: validates a problem and picks the algorithm its structure calls for."""

from __future__ import annotations

from models.dispatch import eligibility
from models.dispatch.assign_flow import solve_assign
from models.dispatch.assign_gap import solve_gap
from models.dispatch.problem import Capacity, Mode, Plan, Problem, validate
from models.dispatch.route import solve_route


def solve(problem: Problem) -> Plan:
    """Raises FieldError for invalid input."""
    validate(problem)
    elig = eligibility.compute(problem)
    if problem.options.mode is Mode.ROUTE:
        return solve_route(problem, elig)
    if problem.options.capacity is Capacity.SHIFT_MINUTES:
        return solve_gap(problem, elig)
    return solve_assign(problem, elig)
