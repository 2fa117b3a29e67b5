"""The serving model version over the live catalog: what Recommend and SimilarItems answer from.

The storefront's changes live in the catalog store (SQLite under the state directory, shared by every
server process of the host). A watcher thread per process looks for new changes every `poll_seconds`
and builds the next view (the version's models over its items with the changes laid on top) before
swapping it in, so a call never waits for a rebuild, and a change is answered by every process within
a poll and a rebuild. A new model version gets the same changes.
"""

from __future__ import annotations

import threading

from models.recommend.catalog import ItemChange
from models.recommend.catalog_store import CatalogStore
from models.recommend.recommender import Recommender
from service import metrics
from service.registry import VersionRegistry
from service.watcher import Watcher


class LiveRecommender:
    def __init__(self, registry: VersionRegistry[Recommender], store: CatalogStore) -> None:
        self.registry = registry
        self.store = store
        self._changes: dict[str, ItemChange] = {}
        self._version = -1  # of the store, as last read
        self._view: tuple[Recommender, int, Recommender] | None = None  # (base, store version, view)
        self._lock = threading.Lock()  # one reader of the store and one rebuild at a time
        self._watcher = Watcher("catalog-watch", self.refresh)

    @property
    def root(self) -> object:
        return self.registry.root

    def current(self) -> Recommender | None:
        base = self.registry.current()
        if base is None:
            return None
        view = self._view
        if view is not None and view[0] is base:
            return view[2]
        return self.refresh()  # a new version: built once, by the first call to see it

    def changes(self) -> dict[str, ItemChange]:
        return dict(self._changes)

    def refresh(self) -> Recommender | None:
        """Reads the store's new changes and rebuilds the view when they or the version changed."""
        with self._lock:
            version, changed = self.store.changes_since(self._version)
            if changed:
                self._changes = {**self._changes, **changed}
            self._version = version
            base = self.registry.current()
            if base is None:
                return None
            view = self._view
            if view is not None and view[0] is base and view[1] == version:
                return view[2]
            changes = self._changes
            built = base.with_catalog(base.catalog.with_changes(changes)) if changes else base
            self._view = (base, version, built)
            metrics.CATALOG_ITEMS.set(int(built.catalog.live().sum()))
            return built

    def apply(self, changes: list[ItemChange]) -> int:
        """Stores the changes durably, then answers with them at once in this process."""
        version = self.store.apply(changes)
        self.refresh()
        return version

    def start(self, poll_seconds: float) -> None:
        self._watcher.start(poll_seconds)

    def stop(self) -> None:
        self._watcher.stop()
