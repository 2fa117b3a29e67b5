"""The recommender versions the service answers with: the newest good one, swapped in atomically.

A new version is loaded and checked completely before it replaces the old one; requests already
running keep the object they started with. A version that fails to load or verify is refused, logged,
and not tried again, and the old one keeps serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from models import versions
from models.recommend.artifact import FORMAT, ArtifactError, RecommenderArtifact
from models.recommend.recommender import Recommender

log = logging.getLogger(__name__)


def load_version(version_dir: Path) -> Recommender:
    manifest = versions.read_manifest(version_dir, verify=True)
    if manifest.get("format") != FORMAT:
        raise versions.VersionError(f"{version_dir}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    return Recommender(RecommenderArtifact.load(version_dir), version_dir.name)


class ModelRegistry:
    def __init__(self, model_dir: Path, on_change: Callable[[Recommender], None] | None = None) -> None:
        self.model_dir = model_dir
        self._current: Recommender | None = None
        self._refused: set[str] = set()
        self._on_change = on_change
        self._lock = threading.Lock()  # one refresh at a time; readers never take it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def current(self) -> Recommender | None:
        return self._current

    def refresh(self) -> bool:
        """Loads the newest version not yet refused, if newer than the current one. True if it swapped."""
        with self._lock:
            current = self._current.version if self._current else ""
            for name in reversed(versions.list_versions(self.model_dir)):
                if name <= current:
                    return False
                if name in self._refused:
                    continue
                try:
                    recommender = load_version(self.model_dir / name)
                except (versions.VersionError, ArtifactError, OSError, ValueError) as error:
                    self._refused.add(name)
                    log.error("refused model version %s: %s", name, error)
                    continue
                self._current = recommender
                log.info("serving model version %s (%d items)", name, recommender.n_items)
                if self._on_change:
                    self._on_change(recommender)
                return True
            return False

    def refused(self) -> set[str]:
        return set(self._refused)

    def start(self, poll_seconds: float) -> None:
        self.refresh()
        self._thread = threading.Thread(
            target=self._watch, args=(poll_seconds,), name="model-watch", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _watch(self, poll_seconds: float) -> None:
        while not self._stop.wait(poll_seconds):
            try:
                self.refresh()
            except Exception:  # the watcher must outlive any one bad directory listing
                log.exception("model refresh failed")
