"""The dispatch entry point: validates a problem and picks the algorithm its structure calls for.

Every solver has one shape, `Solver`: a validated problem and its eligibility (who may take which job,
at what cost, and why nobody may take some) in, a plan that accounts for every job out. The table below
chooses one by the problem's structure; tests/models/dispatch/test_solver_contract.py holds every
solver to the same contract.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from concurrent import futures

from models.dispatch import eligibility, shifts
from models.dispatch.assign_flow import solve_assign
from models.dispatch.assign_gap import solve_gap
from models.dispatch.eligibility import Eligibility
from models.dispatch.problem import Capacity, Mode, Options, Plan, Problem, validate
from models.dispatch.route import HANG_MARGIN_S, solve_route, solve_route_portfolio

Solver = Callable[[Problem, Eligibility], Plan]
MIN_SOLVE_S = 0.05  # what a solve gets even when its executor started it late

# (mode, what capacity counts; None where the mode does not use it) -> the solver.
SOLVERS: dict[tuple[Mode, Capacity | None], Solver] = {
    # Each job alone, capacity a job count: a min-cost flow, exact in well under a second.
    (Mode.ASSIGN, Capacity.COUNT): solve_assign,
    # Each job alone, capacity in minutes: the generalized assignment problem (relaxation + CP-SAT).
    (Mode.ASSIGN, Capacity.SHIFT_MINUTES): solve_gap,
    # A day's sequence per technician: vehicle routing with time windows (OR-Tools).
    (Mode.ROUTE, None): solve_route,
}


def structure(options: Options) -> tuple[Mode, Capacity | None]:
    return options.mode, options.capacity if options.mode is Mode.ASSIGN else None


def solve(problem: Problem, executors: Sequence[futures.Executor] = ()) -> Plan:
    """Raises FieldError for invalid input. Without executors everything runs in this process (ROUTE
    with one search); with them the solving runs there: the service passes worker processes, so that
    native code that fails costs one call, not the server, and ROUTE runs its two searches side by side
    when it is given two."""
    validate(problem)
    return solve_valid(problem, executors)


def solve_valid(problem: Problem, executors: Sequence[futures.Executor] = ()) -> Plan:
    """`solve` for a problem that `validate` has accepted: a technician per shift, answered under the
    request's ids."""
    daily = shifts.one_each(problem)
    return shifts.as_requested(daily, _solve_daily(daily, executors))


def _solve_daily(problem: Problem, executors: Sequence[futures.Executor]) -> Plan:
    if not executors:
        return solve_here(problem)
    if problem.options.mode is Mode.ROUTE and len(executors) >= 2:
        return solve_route_portfolio(problem, executors)
    # The deadline is fixed here: time the executor takes to start the solve comes out of the limit.
    deadline = time.time() + problem.options.time_limit_s
    future = executors[0].submit(solve_by, problem, deadline)
    return future.result(timeout=problem.options.time_limit_s + HANG_MARGIN_S)


def solve_by(problem: Problem, deadline: float) -> Plan:
    """`solve_here` with what is left of the time limit at `deadline` (Unix seconds)."""
    left = max(MIN_SOLVE_S, deadline - time.time())
    return solve_here(
        dataclasses.replace(problem, options=dataclasses.replace(problem.options, time_limit_s=left))
    )


def solve_here(problem: Problem) -> Plan:
    """A validated problem, solved in this process by the solver its structure calls for, within its
    time limit: what computing the eligibility took (a first call in a fresh process pays for lazy
    imports there) comes out of the solver's share."""
    started = time.perf_counter()
    elig = eligibility.compute(problem)
    left = max(MIN_SOLVE_S, problem.options.time_limit_s - (time.perf_counter() - started))
    problem = dataclasses.replace(problem, options=dataclasses.replace(problem.options, time_limit_s=left))
    return SOLVERS[structure(problem.options)](problem, elig)
