"""The latest dispatch plans of this process, kept in memory for the console's /dispatch page: a bounded
ring of the last LATEST AssignJobs problems and their plans, as the handler holds them (plain dataclasses
of models/dispatch/problem.py, not protobuf), so nothing here knows gRPC. Nothing is written to disk: a
plan names customers' addresses, and the order service keeps its own record of them."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from models.dispatch.problem import Plan, Problem

LATEST = 20


@dataclass(frozen=True)
class Solved:
    problem: Problem
    plan: Plan
    at: float  # Unix seconds, when the plan was answered


class PlanLog:
    def __init__(self, size: int = LATEST) -> None:
        self._plans: deque[Solved] = deque(maxlen=size)
        self._lock = threading.Lock()

    def record(self, problem: Problem, plan: Plan) -> None:
        with self._lock:
            self._plans.append(Solved(problem, plan, time.time()))

    def latest(self) -> list[Solved]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._plans))


PLANS = PlanLog()  # this process's: the handler records, the console reads
