"""The console's pages, built in the background and kept in memory: each page is rebuilt when what it
reads changed (the log's files, the reports' versions, the plans, the metrics) or is older than MAX_AGE_S,
checked every CHECK_S. A request takes the page as last built; only the very first waits for it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from service import plan_log
from service.config import Settings
from service.console import data, operations, storefront
from service.console.view import Page, Section
from service.live_catalog import LiveRecommender

log = logging.getLogger(__name__)
CHECK_S = 5.0
MAX_AGE_S = 30.0
# path -> (title, reads the event log)
PAGES = {
    "/": ("Overview", True),
    "/experiments": ("Experiments", True),
    "/touchpoints": ("Touchpoints", True),
    "/funnels": ("Funnels", True),
    "/audiences": ("Audiences", False),
    "/tiers": ("Tiers", False),
    "/supply-demand": ("Supply and demand", False),
    "/dispatch": ("Dispatch", False),
}


@dataclass(frozen=True)
class Sources:
    settings: Settings
    live: LiveRecommender | None = None
    plans: plan_log.PlanLog = plan_log.PLANS

    def reports(self) -> Path:
        """The supply-demand reports sit beside the tiers (`python -m training supply-demand`'s default)."""
        return self.settings.tiers_dir.parent / "supply-demand"

    def categories(self) -> pd.DataFrame:
        model = self.live.current() if self.live is not None else None
        if model is None:
            return pd.DataFrame({"item_id": [], "category": []})
        return pd.DataFrame({"item_id": model.catalog.ids, "category": model.catalog.categories})


def _stamp(path: Path) -> tuple[object, ...]:
    files = sorted(path.glob("*/*")) if path.is_dir() else []
    return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.is_file())


class Pages:
    """Thread-safe: the refresher writes, request threads read."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self._pages: dict[str, Page] = {}
        self._stamps: dict[str, tuple[object, ...]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-pages", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def get(self, path: str) -> Page:
        page = self._pages.get(path)
        if page is None:
            with self._lock:  # the first request of a page before the refresher got to it
                page = self._pages.get(path) or self._build([path], None)[path]
        return page

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._build([p for p in PAGES if self._stale(p)], None)
            self._stop.wait(CHECK_S)

    def _stale(self, path: str) -> bool:
        page = self._pages.get(path)
        return (
            page is None
            or time.time() - page.built_at > MAX_AGE_S
            or self._stamps.get(path) != self._stamp(path)
        )

    def _stamp(self, path: str) -> tuple[object, ...]:
        settings = self.sources.settings
        if path == "/":  # the metrics move with every call: the page follows the calls answered
            return (_stamp(settings.events()), operations.calls_answered())
        if PAGES[path][1]:
            return (
                _stamp(settings.events()),
                settings.experiments and _stamp(Path(settings.experiments).parent),
            )
        if path == "/dispatch":
            newest = self.sources.plans.latest()[:1]
            return tuple((id(s), s.at) for s in newest)
        directory = {"/audiences": Path(settings.audiences), "/tiers": settings.tiers_dir}.get(
            path, self.sources.reports()
        )
        return (str(data.current_version(directory)) if str(directory) not in ("", ".") else "",)

    def _build(self, paths: list[str], db: duckdb.DuckDBPyConnection | None) -> dict[str, Page]:
        for path in paths:
            stamp = self._stamp(path)
            if PAGES[path][1] and db is None:
                db = data.open_log(self.sources.settings.events())
            try:
                sections = tuple(self._sections(path, db))
            except Exception as error:  # a bad file shows on its page, and the other pages still build
                log.exception("console: building %s failed", path)
                sections = (
                    Section("This page could not be built", f"{type(error).__name__}: {error}", warning=True),
                )
            self._pages[path] = Page(path, PAGES[path][0], sections, time.time())
            self._stamps[path] = stamp
        if db is not None:
            db.close()
        return self._pages

    def _sections(self, path: str, db: duckdb.DuckDBPyConnection | None) -> list[Section]:
        s, settings = self.sources, self.sources.settings
        builders: dict[str, Callable[[], list[Section]]] = {
            "/": lambda: operations.overview(db),  # type: ignore[arg-type]
            "/experiments": lambda: storefront.experiments(db, settings.experiments),  # type: ignore[arg-type]
            "/touchpoints": lambda: storefront.touchpoints(db),  # type: ignore[arg-type]
            "/funnels": lambda: storefront.funnels(db, s.categories()),  # type: ignore[arg-type]
            "/audiences": lambda: storefront.audiences(settings.audiences),
            "/tiers": lambda: operations.tiers(settings.tiers_dir),
            "/supply-demand": lambda: operations.supply_demand(s.reports()),
            "/dispatch": lambda: operations.dispatch(s.plans.latest()),
        }
        return builders[path]()
