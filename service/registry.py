"""Versioned artifacts the service answers with: the newest good version, swapped in atomically.

A new version is loaded and checked completely before it replaces the old one; requests already
running keep the object they started with. A version that fails to load or verify is refused, logged,
and not tried again, and the old one keeps serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from models import versions
from models.dispatch import tiers
from models.dispatch.tiers import TierTable
from models.recommend.artifact import FORMAT, RecommenderArtifact
from models.recommend.recommender import Recommender
from models.recommend.touchpoints import TouchpointRules
from service import metrics
from service.logs import audit
from service.watcher import Watcher

log = logging.getLogger(__name__)
Loaded = TypeVar("Loaded")


class NotPromoted(versions.VersionError):
    """A complete version that training decided not to serve: skipped, not an error."""


def promoted(version_dir: Path) -> bool:
    """Whether training (or `python -m training versions promote`) says this version may serve;
    VersionError when its manifest cannot be read."""
    return bool(versions.read_manifest(version_dir, verify=False).get("promoted", False))


def still_promoted(version_dir: Path) -> bool:
    """For the serving version: only an explicit demotion takes it out of service, not a manifest that
    became unreadable under it (it is loaded and verified already)."""
    try:
        return promoted(version_dir)
    except versions.VersionError:
        return True


def load_recommender(version_dir: Path, rules: TouchpointRules | None = None) -> Recommender:
    if not promoted(version_dir):  # checked before the checksums: cheap, and asked at every poll
        raise NotPromoted(f"{version_dir.name}: not promoted (withheld by training's gate, or rolled back)")
    manifest = versions.read_manifest(version_dir, verify=True, expected_format=FORMAT)
    return Recommender(RecommenderArtifact.load(version_dir), version_dir.name, rules, manifest)


class VersionRegistry(Generic[Loaded]):
    def __init__(
        self,
        kind: str,
        root: Path,
        loader: Callable[[Path], Loaded],
        on_change: Callable[[Loaded], None] | None = None,
        still_wanted: Callable[[Path], bool] = lambda _: True,
    ) -> None:
        self.kind = kind
        self.root = root
        self._loader = loader
        self._current: Loaded | None = None
        self._current_name = ""
        self._refused: set[str] = set()
        self._on_change = on_change
        self._still_wanted = still_wanted
        self._skipped: set[str] = set()  # not promoted, last time they were looked at
        self._lock = threading.Lock()  # one refresh at a time; readers never take it
        self._watcher = Watcher(f"{kind}-watch", self.refresh)

    def current(self) -> Loaded | None:
        return self._current

    def refresh(self) -> bool:
        """Serves the newest version that loads and is wanted: a newer one when it appears, an older one
        when the current one was rolled back. Broken versions are refused once and not tried again.
        True if it swapped."""
        with self._lock:
            for name in reversed(versions.list_versions(self.root)):
                if name in self._refused:
                    continue
                if name == self._current_name:
                    if self._still_wanted(self.root / name):
                        return False
                    continue  # rolled back: the newest wanted version below it serves
                try:
                    loaded = self._loader(self.root / name)
                except NotPromoted as skipped:
                    if name not in self._skipped:
                        log.info("skipping %s version %s", self.kind, skipped)
                        self._skipped.add(name)
                    continue
                except Exception as error:  # whatever a bad file does, the serving version stays
                    self._refused.add(name)
                    metrics.version_refused(self.kind)
                    log.error("refused %s version %s: %s", self.kind, name, error)
                    audit("version_refused", kind=self.kind, version=name, error=str(error))
                    continue
                previous = self._current_name
                self._current, self._current_name = loaded, name
                log.info("serving %s version %s", self.kind, name)
                metrics.version_changed(self.kind, previous, name)
                audit("version_change", kind=self.kind, version=name, previous=previous)
                if self._on_change:
                    self._on_change(loaded)
                return True
            return False

    def refused(self) -> set[str]:
        return set(self._refused)

    def start(self, poll_seconds: float) -> None:
        self._watcher.start(poll_seconds)

    def stop(self) -> None:
        self._watcher.stop()


def recommender_registry(
    root: Path, on_change: Callable[[Recommender], None] | None = None, rules: TouchpointRules | None = None
) -> VersionRegistry[Recommender]:
    def load(path: Path) -> Recommender:
        return load_recommender(path, rules)

    return VersionRegistry("model", root, load, on_change, still_promoted)


def tier_registry(root: Path) -> VersionRegistry[TierTable]:
    return VersionRegistry("tiers", root, tiers.load)
