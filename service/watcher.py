"""A daemon thread that calls a refresh every few seconds until stopped, and outlives its failures: the
model and tier directories and the live catalog are each kept current by one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Watcher:
    def __init__(self, name: str, refresh: Callable[[], object]) -> None:
        self._name = name
        self._refresh = refresh
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, poll_seconds: float) -> None:
        """Refreshes once here, then every `poll_seconds` on the thread."""
        self._refresh()
        self._thread = threading.Thread(
            target=self._watch, args=(poll_seconds,), name=self._name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _watch(self, poll_seconds: float) -> None:
        while not self._stop.wait(poll_seconds):
            try:
                self._refresh()
            except Exception:  # one bad listing or a locked store must not end the watching
                log.exception("%s: refresh failed; what is served stays as it was", self._name)
