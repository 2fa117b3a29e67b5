"""Progress of a long step (ALS iterations, LightFM epochs, the blend grid): a bar on a terminal, and
where nobody watches one (CI, a log file) a log line every few seconds with the elapsed time."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

LOG_EVERY_S = 10.0

log = logging.getLogger("shifu.progress")


class Progress(Protocol):
    def __call__(self, done: int, total: int) -> None:
        """`done` steps of `total` are finished."""


def silent(done: int, total: int) -> None:
    """For callers that do not report progress."""


@contextmanager
def track(what: str, every_s: float = LOG_EVERY_S) -> Iterator[Progress]:
    started = time.perf_counter()
    if sys.stderr.isatty():
        from tqdm import tqdm

        with tqdm(desc=what, leave=False, file=sys.stderr) as bar:

            def advance(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            yield advance
        return
    last = started

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last >= every_s:
            last = now
            log.info("%s: %d/%d after %.0f s", what, done, total, now - started)

    yield report
