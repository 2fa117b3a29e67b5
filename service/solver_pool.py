"""The worker processes that run dispatch solves, owned by the server.

Native solver code (OR-Tools routing, CP-SAT, min-cost flow) aborts its process on input it rejects;
run in the server process, that would end every call of every service. Here each solve runs in worker
processes of its own, so a crash costs the one call that caused it: its future fails with WorkerDied,
and the process is started again for the next call. The workers run at a lower OS priority, so the
storefront's calls in the server process win the cores whenever both want them.

A lane is the pair of processes one solve may use (ROUTE runs its two searches side by side); the
number of lanes is the number of solves that may run at once.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection, wait
from typing import Any

log = logging.getLogger(__name__)
Lane = tuple["SolverProcess", "SolverProcess"]


class WorkerDied(RuntimeError):
    """The worker process ended while running a task (a native abort, a kill, running out of memory)."""


class PoolBusy(RuntimeError):
    """Every lane was busy for as long as the call could wait."""


def _serve(connection: Connection, niceness: int) -> None:
    """A worker's loop: run each (function, args) received, send back (ok, result or error)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when its workers stop
    if niceness:
        os.nice(niceness)
    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):  # the server is gone
            return
        if task is None:
            return
        function, args = task
        try:
            outcome: tuple[bool, Any] = (True, function(*args))
        except BaseException as error:  # sent back to the caller, whatever it is
            outcome = (False, _portable(error))
        connection.send(outcome)


def _portable(error: BaseException) -> BaseException:
    """The error itself when it survives pickling, else a RuntimeError that says what it was."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


def _warm_up() -> None:
    """Imports the solvers, so that the first call does not pay for it within its time limit."""
    import models.dispatch.solver  # noqa: F401


class SolverProcess(futures.Executor):
    """One worker process running one task at a time. A process that died is started again on the
    next submit."""

    def __init__(self, name: str, niceness: int) -> None:
        self.name = name
        self._niceness = niceness
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._connection: Connection | None = None
        self._closed = False
        self._last: futures.Future | None = None  # one task at a time: its answer is the next read
        self._stopped: multiprocessing.process.BaseProcess | None = None  # killed on purpose

    def _ensure_started(self) -> tuple[multiprocessing.process.BaseProcess, Connection]:
        if self._process is None or not self._process.is_alive() or self._connection is None:
            context = multiprocessing.get_context("spawn")
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve, args=(theirs, self._niceness), name=self.name, daemon=True
            )
            process.start()
            theirs.close()
            self._process, self._connection = process, ours
        return self._process, self._connection

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future:
        if kwargs:
            raise TypeError("SolverProcess.submit takes positional arguments only")
        future: futures.Future = futures.Future()
        with self._lock:
            if self._last is not None:
                futures.wait([self._last])
            if self._closed:
                raise RuntimeError(f"{self.name} is shut down")
            process, connection = self._ensure_started()
            connection.send((fn, args))
            self._last = future
        threading.Thread(
            target=self._await, args=(future, process, connection), name=f"{self.name}-wait", daemon=True
        ).start()
        return future

    def _await(
        self, future: futures.Future, process: multiprocessing.process.BaseProcess, connection: Connection
    ) -> None:
        if connection in wait([connection, process.sentinel]):
            try:
                ok, value = connection.recv()
            except (EOFError, OSError):
                pass  # it died while answering
            else:
                (future.set_result if ok else future.set_exception)(value)
                return
        process.join(timeout=5)
        level = logging.INFO if process is self._stopped else logging.ERROR
        log.log(
            level, "%s ended while solving (exit code %s); it is started again", self.name, process.exitcode
        )
        # Before taking the lock: a submit holding it waits for this future.
        future.set_exception(
            WorkerDied(f"the solver process ended unexpectedly (exit code {process.exitcode})")
        )
        with self._lock:
            if self._process is process:
                self._process, self._connection = None, None

    @property
    def busy(self) -> bool:
        """Still running a task whose caller has moved on (a search that overran its limit)."""
        return self._last is not None and not self._last.done()

    def restart(self) -> None:
        """Ends the process and starts a new one at once, warming it up in the background."""
        self.kill()
        self.submit(_warm_up)

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def kill(self) -> None:
        """Ends the process at once (a task that hangs); the next submit starts a new one."""
        with self._lock:
            process = self._process
        if process is not None and process.is_alive():
            self._stopped = process
            process.kill()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            process, connection = self._process, self._connection
            self._process, self._connection = None, None
        if process is None or connection is None:
            return
        with suppress(OSError):
            connection.send(None)
        process.join(timeout=5 if wait else 0)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)


class SolverPool:
    """`lanes` solves at once, each in its own pair of worker processes."""

    def __init__(self, lanes: int, niceness: int) -> None:
        self.size = lanes
        self._free: queue.Queue[Lane] = queue.Queue()
        self._all = [
            (SolverProcess(f"solver-{i}a", niceness), SolverProcess(f"solver-{i}b", niceness))
            for i in range(lanes)
        ]
        for lane in self._all:
            self._free.put(lane)

    def warm_up(self) -> list[futures.Future]:
        """Starts every worker and imports the solvers there, in the background; done when they are."""
        return [process.submit(_warm_up) for lane in self._all for process in lane]

    def pids(self) -> list[int]:
        """The running worker processes' ids."""
        return [p.pid for lane in self._all for p in lane if p.pid is not None]

    @property
    def busy(self) -> int:
        return self.size - self._free.qsize()

    @contextmanager
    def lane(self, wait_s: float) -> Iterator[Lane]:
        """A free lane, waiting at most `wait_s` for one (PoolBusy after that). A process of the lane still
        busy when the solve is over is started again before the lane is handed out again."""
        try:
            lane = self._free.get(timeout=max(wait_s, 0.0)) if wait_s > 0 else self._free.get_nowait()
        except queue.Empty:
            raise PoolBusy(f"{self.size} dispatch solve(s) already running") from None
        try:
            yield lane
        finally:
            # A search the solve left behind (it overran the limit, or hung) would hold its process
            # into the next solve: it is stopped, and the process started again.
            for process in lane:
                if process.busy:
                    log.info("%s still busy after its solve; started again", process.name)
                    process.restart()
            self._free.put(lane)

    def shutdown(self) -> None:
        for lane in self._all:
            for process in lane:
                process.shutdown()
