"""The dispatch entry point: validates a problem and picks the algorithm its structure calls for."""

from __future__ import annotations

from models.dispatch import eligibility
from models.dispatch.assign_flow import solve_assign
from models.dispatch.problem import Mode, Plan, Problem, validate


class UnsupportedModeError(NotImplementedError):
    """The problem asks for a mode this build cannot solve yet."""


def solve(problem: Problem) -> Plan:
    """Raises FieldError for invalid input, UnsupportedModeError for ROUTE."""
    validate(problem)
    if problem.options.mode is Mode.ROUTE:
        raise UnsupportedModeError(
            "ROUTE mode (day plans with sequence and arrival times) is not implemented yet; use ASSIGN"
        )
    return solve_assign(problem, eligibility.compute(problem))
