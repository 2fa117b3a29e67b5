"""The dispatch entry point: validates a problem and picks the algorithm its structure calls for."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent import futures

from models.dispatch import eligibility
from models.dispatch.assign_flow import solve_assign
from models.dispatch.assign_gap import solve_gap
from models.dispatch.problem import Capacity, Mode, Plan, Problem, validate
from models.dispatch.route import HANG_MARGIN_S, solve_route, solve_route_portfolio


def solve(problem: Problem, executors: Sequence[futures.Executor] = ()) -> Plan:
    """Raises FieldError for invalid input. Without executors everything runs in this process (ROUTE
    with one search); with them the solving runs there: the service passes worker processes, so that
    native code that fails costs one call, not the server, and ROUTE runs its two searches side by side
    when it is given two."""
    validate(problem)
    return solve_valid(problem, executors)


def solve_valid(problem: Problem, executors: Sequence[futures.Executor] = ()) -> Plan:
    """`solve` for a problem that `validate` has accepted."""
    if not executors:
        return solve_here(problem)
    if problem.options.mode is Mode.ROUTE and len(executors) >= 2:
        return solve_route_portfolio(problem, executors)
    return (
        executors[0].submit(solve_here, problem).result(timeout=problem.options.time_limit_s + HANG_MARGIN_S)
    )


def solve_here(problem: Problem) -> Plan:
    """A validated problem, solved in this process."""
    elig = eligibility.compute(problem)
    if problem.options.mode is Mode.ROUTE:
        return solve_route(problem, elig)
    if problem.options.capacity is Capacity.SHIFT_MINUTES:
        return solve_gap(problem, elig)
    return solve_assign(problem, elig)
