"""A generated event log with planted behaviours, each beside look-alike controls that just miss its rule
(the "done when" of issue 26): `planted[tag]` are the users who must carry the default tag."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

AS_OF = pd.Timestamp("2026-11-30T12:00:00Z")
DAY = pd.Timedelta(days=1)
CATEGORIES = {"sofa": 20, "purifier_filter": 10, "cleaning": 10, "lamp": 20}


@dataclass
class PlantedLog:
    events: pd.DataFrame
    items: pd.DataFrame
    planted: dict[str, set[str]] = field(default_factory=dict)

    def write(self, directory: Path) -> tuple[Path, Path]:
        events, items = directory / "events.csv", directory / "items.csv"
        frame = self.events.assign(timestamp=self.events["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        frame.to_csv(events, index=False)
        self.items.to_csv(items, index=False)
        return events, items


def _items() -> pd.DataFrame:
    rows = [(f"{c}_{k:02d}", f"{c} {k}", c) for c, n in CATEGORIES.items() for k in range(n)]
    return pd.DataFrame(rows, columns=["item_id", "title", "category"]).assign(in_stock="true")


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.rows: list[tuple[pd.Timestamp, str, str, str]] = []
        self.planted: dict[str, set[str]] = {}

    def item(self, category: str) -> str:
        return f"{category}_{int(self.rng.integers(CATEGORIES[category])):02d}"

    def at(self, days_ago: float) -> pd.Timestamp:
        """`days_ago` before the as-of time, give or take two hours (never across the rule's edge)."""
        return AS_OF - days_ago * DAY + pd.Timedelta(hours=float(self.rng.uniform(-2, 2)))

    def event(self, user: str, days_ago: float, kind: str, item: str) -> None:
        self.rows.append((self.at(days_ago), user, item, kind))

    def regular(self, user: str) -> None:
        """An old and a recent view of a lamp: neither new nor dormant, and tagged by nothing else."""
        self.event(user, 60, "view", self.item("lamp"))
        self.event(user, 1, "view", self.item("lamp"))

    def group(self, tag: str, kind: str, n: int, variant: str = "") -> list[str]:
        users = [f"{tag}_{kind}{variant}_{k:03d}" for k in range(n)]
        if kind == "planted":
            self.planted.setdefault(tag, set()).update(users)
        return users


def _carts(b: _Builder, n: int) -> None:
    for user in b.group("abandoned_cart", "planted", n):
        b.regular(user)
        b.event(user, 2, "cart", b.item("sofa"))
    for user in b.group("abandoned_cart", "control", n):  # ordered the cart item the next day
        b.regular(user)
        item = b.item("sofa")
        b.event(user, 3, "cart", item)
        b.event(user, 2, "order", item)


def _views(b: _Builder, n: int) -> None:
    for user in b.group("viewed_not_ordered", "planted", n):
        b.regular(user)
        for days in (5, 4, 3):
            b.event(user, days, "view" if days != 4 else "click", b.item("sofa"))
    for user in b.group("viewed_not_ordered", "control", n):  # viewed the category once
        b.regular(user)
        b.event(user, 4, "view", b.item("sofa"))


def _refills(b: _Builder, n: int) -> None:
    for user in b.group("refill_due", "planted", n):  # every 30 days, last 60 days ago
        b.regular(user)
        for days in (150, 120, 90.5, 60):
            b.event(user, days, "order", b.item("purifier_filter"))
    for user in b.group(
        "refill_due", "planted", n // 2, "_once"
    ):  # one order, older than the category's 30 days
        b.regular(user)
        b.event(user, 60, "order", b.item("cleaning"))
    for user in b.group("refill_due", "control", n):  # last refill three weeks ago, every 40 days
        b.regular(user)
        for days in (101, 61, 21):
            b.event(user, days, "order", b.item("purifier_filter"))
    for user in b.group(
        "refill_due", "control", n // 2, "_cleaning"
    ):  # cleaning every 45 days, so far in time
        b.regular(user)
        for days in (100, 55, 10):
            b.event(user, days, "order", b.item("cleaning"))


def _buyers(b: _Builder, n: int) -> None:
    for user in b.group("repeat_buyer", "planted", n):
        b.regular(user)
        for days in (80, 40, 10):
            b.event(user, days, "order", b.item("sofa"))
    for user in b.group("repeat_buyer", "control", n):  # one order in 90 days (two more before)
        b.regular(user)
        for days in (150, 120, 10):
            b.event(user, days, "order", b.item("sofa"))


def _activity(b: _Builder, n: int) -> None:
    for user in b.group("dormant", "planted", n):
        b.event(user, 60, "view", b.item("lamp"))
        b.event(user, 35, "view", b.item("lamp"))
    for user in b.group("dormant", "control", n):  # active three days ago
        b.event(user, 60, "view", b.item("lamp"))
        b.event(user, 3, "view", b.item("lamp"))
    for user in b.group("new_customer", "planted", n):
        b.event(user, 5, "view", b.item("lamp"))
        b.event(user, 1, "view", b.item("lamp"))
    for user in b.group("new_customer", "control", n):  # first event ten days ago
        b.event(user, 10, "view", b.item("lamp"))
        b.event(user, 1, "view", b.item("lamp"))


def planted_log(n: int = 40, seed: int = 3) -> PlantedLog:
    b = _Builder(seed)
    for plant in (_carts, _views, _refills, _buyers, _activity):
        plant(b, n)
    events = pd.DataFrame(b.rows, columns=["timestamp", "user_id", "item_id", "event_type"])
    return PlantedLog(events.sort_values("timestamp", kind="stable"), _items(), b.planted)
