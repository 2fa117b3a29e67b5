"""A seeded generator of a small O2O home-service world, written in the project's own formats.

The world has structure a good model can learn: users have interests (the product categories they
come back to), a style and a budget, items have a style and a price, and choices follow all three;
scenes shift what people look at (a new home wants furniture and lamps, a finished order wants its
installation, a reminder wants a filter refill); popular items are shown more; water-purifier owners
come back for filters of their purifier's brand; new products keep being launched (15% of them during
the log); touchpoints show impressions that are clicked or not. The technicians' world comes with
it (training/demo_jobs.py): a job log in five cities and a day of dispatch for those in Shanghai.
"""

from __future__ import annotations

import heapq
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from models.event_format import EVENT_COLUMNS
from training.demo_jobs import CITIES, technician_world
from training.demo_jobs import dispatch_day as dispatch_day  # callers build days as demo.dispatch_day

CITY_SHARE = [0.3, 0.25, 0.2, 0.13, 0.12]
STYLES = ["modern", "nordic", "classic", "industrial"]
SEGMENTS = {"economy": 0.8, "mid": 1.0, "premium": 1.35}  # multiplies the log of the preferred price
AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55+"]

# category: (group, median price in CNY, brands)
PRODUCTS = {
    "sofa": ("furniture", 4200, ["Linsy", "Kuka", "Quanyou", "Norhome"]),
    "bed": ("furniture", 3500, ["Linsy", "Kuka", "Mlily", "Norhome"]),
    "dining_table": ("furniture", 2200, ["Quanyou", "Linsy", "Genji"]),
    "wardrobe": ("furniture", 3800, ["Sogal", "Holike", "Quanyou"]),
    "office_chair": ("furniture", 900, ["Sihoo", "Ergomax", "Genji"]),
    "ceiling_lamp": ("lamp", 650, ["Opple", "NVC", "Philips"]),
    "floor_lamp": ("lamp", 420, ["Opple", "Philips", "Yeelight"]),
    "desk_lamp": ("lamp", 260, ["Yeelight", "Opple", "BenQ"]),
    "water_purifier": ("purifier", 2600, ["Midea", "Haier", "Angel", "Xiaomi"]),
    "purifier_filter": ("consumable", 320, ["Midea", "Haier", "Angel", "Xiaomi"]),
}
SERVICES = {  # service category: product categories it serves, median price
    "installation": (["sofa", "bed", "dining_table", "wardrobe", "ceiling_lamp", "water_purifier"], 180),
    "repair": (["sofa", "wardrobe", "ceiling_lamp", "water_purifier"], 150),
    "cleaning": (["sofa", "bed", "water_purifier"], 220),
    "removal": (["sofa", "bed", "wardrobe"], 260),
}
ACCESSORIES = {"bed": ["desk_lamp", "floor_lamp"], "sofa": ["floor_lamp"], "dining_table": ["ceiling_lamp"]}

SCENES = ["browse", "new_home", "after_order", "service_reminder", "repair"]
SCENE_CATEGORIES: dict[str, dict[str, float]] = {
    "browse": {
        "sofa": 2,
        "bed": 1.5,
        "dining_table": 1,
        "office_chair": 1.5,
        "desk_lamp": 1.5,
        "floor_lamp": 1,
        "ceiling_lamp": 1,
        "water_purifier": 1.2,
    },
    "new_home": {
        "sofa": 3,
        "bed": 3,
        "wardrobe": 2.5,
        "dining_table": 2,
        "ceiling_lamp": 2,
        "water_purifier": 1.5,
    },
    "repair": {"repair": 4, "cleaning": 1},
}
SCENE_TOUCHPOINTS = {
    "browse": {"home_feed": 0.5, "category_page": 0.3, "product_page": 0.2},
    "new_home": {"home_feed": 0.3, "category_page": 0.4, "product_page": 0.3},
    "after_order": {"order_complete": 0.7, "cart": 0.3},
    "service_reminder": {"service_reminder": 1.0},
    "repair": {"home_feed": 0.4, "service_reminder": 0.6},
}
NEW_SHARE = 0.15  # products launched while the log runs, at a uniform time
# A category the user has no particular interest in is still visited this much (against interests
# summing to 1 over the product categories).
INTEREST_FLOOR = 0.02
# How ready to buy a visit in the scene is: a reminder or a finished order comes with a need.
SCENE_INTENT = {"browse": 1.0, "new_home": 1.2, "after_order": 2.5, "service_reminder": 2.5, "repair": 2.0}
END = datetime(2026, 10, 31, tzinfo=UTC)


@dataclass(frozen=True)
class DemoSize:
    users: int = 5000
    items: int = 2000
    sessions_per_user: float = 3.0
    days: int = 90
    technicians: int = 80
    jobs: int = 300
    job_log_technicians: int = 200  # the first `technicians` of them work in Shanghai


@dataclass
class _User:
    user_id: str
    city: str
    segment: str
    age_band: str
    style: np.ndarray  # preference over STYLES
    interests: dict[str, float]  # how much the user cares for each product category (their taste)
    new_home: bool
    purifier_brand: str | None = None


class _World:
    def __init__(self, rng: np.random.Generator, size: DemoSize) -> None:
        self.rng = rng
        self.items = self._items(size.items)
        self.users = self._users(size.users)
        self.by_category: dict[str, np.ndarray] = {
            c: np.flatnonzero(self.items["category"].to_numpy() == c) for c in self.items["category"].unique()
        }
        self.style_of = (
            self.items["style"].map({s: i for i, s in enumerate(STYLES)}).fillna(-1).astype(int).to_numpy()
        )
        self.log_price = np.log(self.items["price"].to_numpy())
        self.log_median = np.log(self.items["category"].map(self._median).to_numpy(dtype=float))
        self.category = self.items["category"].to_numpy()
        self.brand = self.items["brand"].to_numpy()
        self.price = self.items["price"].to_numpy()
        self.services: dict[tuple[str, str, str], np.ndarray] = {}
        for i, (category, tags) in enumerate(zip(self.category, self.items["tags"], strict=True)):
            if category in SERVICES:
                target = next(t[4:] for t in tags if t.startswith("for:"))
                city = next(t[5:] for t in tags if t.startswith("city:"))
                self.services[(category, target, city)] = np.array([i])
        # Latent appeal: a few items are hits, most are not.
        self.appeal = rng.normal(0.0, 0.8, len(self.items))
        # New products keep arriving: a share of them is launched during the log (seconds after its start).
        launched_later = (self.items["group"] != "service").to_numpy() & (
            rng.random(len(self.items)) < NEW_SHARE
        )
        self.launch = np.where(launched_later, rng.uniform(0, size.days * 86400, len(self.items)), 0.0)

    def _items(self, n_items: int) -> pd.DataFrame:
        rng, rows = self.rng, []
        n_services = sum(len(c) for c, _ in SERVICES.values()) * len(CITIES)
        per_product = max((n_items - n_services) // len(PRODUCTS), 4)
        for category, (group, median, brands) in PRODUCTS.items():
            for k in range(per_product):
                brand = brands[k % len(brands)]
                style = STYLES[rng.integers(len(STYLES))]
                price = round(float(median * math.exp(rng.normal(0, 0.45))), -1 if median < 1000 else -2)
                title = f"{brand} {style} {category.replace('_', ' ')} {k + 1}"
                tags = [group, style, f"brand:{brand}"]
                if category == "purifier_filter":
                    title, tags, style = f"{brand} replacement filter {k + 1}", [group, f"fits:{brand}"], ""
                rows.append((category, title, brand, price, style, tags, group))
        for service, (serves, median) in SERVICES.items():
            for city in CITIES:
                for target in serves:
                    price = round(float(median * math.exp(rng.normal(0, 0.2))), -1)
                    title = f"{target.replace('_', ' ')} {service} ({city})"
                    rows.append(
                        (
                            service,
                            title,
                            "Shifu",
                            price,
                            "",
                            ["service", f"for:{target}", f"city:{city}"],
                            "service",
                        )
                    )
        items = pd.DataFrame(rows, columns=["category", "title", "brand", "price", "style", "tags", "group"])
        items.insert(0, "item_id", [f"i{i:05d}" for i in range(len(items))])
        items["in_stock"] = rng.random(len(items)) > 0.08
        items.loc[items["group"] == "service", "in_stock"] = True
        return items

    def _users(self, n_users: int) -> list[_User]:
        rng = self.rng
        cities = list(CITIES)
        users = []
        for u in range(n_users):
            users.append(
                _User(
                    user_id=f"u{u:05d}",
                    city=cities[rng.choice(len(cities), p=CITY_SHARE)],
                    segment=list(SEGMENTS)[rng.choice(3, p=[0.35, 0.45, 0.2])],
                    age_band=AGE_BANDS[rng.choice(5, p=[0.12, 0.38, 0.28, 0.14, 0.08])],
                    style=rng.dirichlet(np.full(len(STYLES), 0.35)),
                    interests=dict(zip(PRODUCTS, rng.dirichlet(np.full(len(PRODUCTS), 0.3)), strict=True)),
                    new_home=bool(rng.random() < 0.3),
                )
            )
        return users

    def utility(self, user: _User, candidates: np.ndarray) -> np.ndarray:
        style = np.where(
            self.style_of[candidates] >= 0, user.style[np.maximum(self.style_of[candidates], 0)], 0.25
        )
        preferred = self.log_median[candidates] * SEGMENTS[user.segment] ** 0.15
        price_fit = -np.abs(self.log_price[candidates] - preferred)
        return 3.0 * style + 1.2 * price_fit + self.appeal[candidates]

    @staticmethod
    def _median(category: str) -> float:
        return PRODUCTS[category][1] if category in PRODUCTS else SERVICES[category][1]


def _softmax_choice(
    rng: np.random.Generator, candidates: np.ndarray, scores: np.ndarray, k: int
) -> np.ndarray:
    p = np.exp(scores - scores.max())
    k = min(k, candidates.size)
    return rng.choice(candidates, size=k, replace=False, p=p / p.sum())


class _EventWriter:
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(
        self,
        ts: datetime,
        user: _User,
        item: int,
        event: str,
        touchpoint: str,
        scene: str,
        value: str = "",
        recommendation: str = "",
    ) -> None:
        self.rows.append(
            (
                ts.isoformat().replace("+00:00", "Z"),
                user.user_id,
                f"i{item:05d}",
                event,
                touchpoint,
                scene,
                value,
                recommendation,
            )
        )


def _session(
    world: _World, out: _EventWriter, user: _User, scene: str, start: datetime, candidates: np.ndarray
) -> list[int]:
    """Impressions, views, clicks, carts and orders of one visit; returns the items ordered."""
    rng = world.rng
    if candidates.size == 0:
        return []
    touchpoints = SCENE_TOUCHPOINTS[scene]
    touchpoint = list(touchpoints)[rng.choice(len(touchpoints), p=list(touchpoints.values()))]
    utility = world.utility(user, candidates)
    t = start
    # The slot shows what is popular; the user clicks what fits.
    shown = _softmax_choice(rng, candidates, world.appeal[candidates] * 1.5, 4)
    slot = f"r{len(out.rows):08d}"  # the recommendation the slot showed, for attributing clicks and orders
    for item in shown:
        out.add(t, user, int(item), "impression", touchpoint, scene, recommendation=slot)
    shown_utility = world.utility(user, shown)
    clicked = shown[rng.random(shown.size) < 1 / (1 + np.exp(-(shown_utility - 1.0)))]
    browsed = _softmax_choice(rng, candidates, utility, 1 + rng.poisson(1.5))
    viewed = list(dict.fromkeys([*clicked.tolist(), *browsed.tolist()]))
    ordered = []
    for item in viewed:
        t += timedelta(seconds=int(rng.integers(5, 120)))
        via = slot if item in clicked else ""
        if via:
            out.add(t, user, item, "click", touchpoint, scene, recommendation=via)
        out.add(t, user, item, "view", touchpoint, scene, recommendation=via)
        fit = float(utility[candidates == item][0])
        if rng.random() < min(0.9, 0.35 * SCENE_INTENT[scene] / (1 + math.exp(-(fit - 1.5)))):
            t += timedelta(seconds=int(rng.integers(10, 300)))
            out.add(t, user, item, "cart", "cart", scene, recommendation=via)
            if rng.random() < 0.55:
                t += timedelta(seconds=int(rng.integers(30, 900)))
                out.add(t, user, item, "order", "cart", scene, f"{world.price[item]:.2f}", via)
                ordered.append(item)
    return ordered


def _services_for(world: _World, user: _User, category: str, service: str) -> np.ndarray:
    """The service items of this kind, for this product category, in the user's city."""
    return world.services.get((service, category, user.city), np.empty(0, dtype=int))


def _simulate(world: _World, size: DemoSize) -> pd.DataFrame:
    """Each user's visits in time order: planned ones, and the follow-ups their orders lead to."""
    rng, out = world.rng, _EventWriter()
    start_of_log = END - timedelta(days=size.days)
    horizon = size.days * 86400
    for user in world.users:
        n_sessions = rng.poisson(size.sessions_per_user * rng.lognormal(0, 0.5))
        queue: list[tuple[int, int, str, np.ndarray | None]] = [
            (int(offset), n, "", None) for n, offset in enumerate(rng.integers(0, horizon, n_sessions))
        ]
        heapq.heapify(queue)
        counter = len(queue)
        while queue:
            offset, _, scene, candidates = heapq.heappop(queue)
            if candidates is None:
                scene, candidates = _planned_visit(world, user)
            for due, follow_scene, follow_candidates in _visit(
                world, out, user, scene, start_of_log, offset, candidates
            ):
                if due < horizon:
                    heapq.heappush(queue, (due, counter, follow_scene, follow_candidates))
                    counter += 1
    return pd.DataFrame(out.rows, columns=list(EVENT_COLUMNS))


def _planned_visit(world: _World, user: _User) -> tuple[str, np.ndarray]:
    """A visit the user starts: a scene by life stage, a category by scene, the items of that category."""
    rng = world.rng
    scene_p = [0.55, 0.3, 0, 0, 0.15] if user.new_home else [0.8, 0.05, 0, 0, 0.15]
    scene = SCENES[rng.choice(len(SCENES), p=scene_p)]
    # The scene says what people look at; the user's own interests, which of those this user does.
    weights = {
        c: w * (INTEREST_FLOOR + user.interests.get(c, 1.0)) for c, w in SCENE_CATEGORIES[scene].items()
    }
    p = np.array(list(weights.values())) / sum(weights.values())
    category = list(weights)[rng.choice(len(weights), p=p)]
    if category in SERVICES:
        return scene, _services_for(world, user, str(rng.choice(SERVICES[category][0])), category)
    return scene, world.by_category[category]


def _visit(
    world: _World,
    out: _EventWriter,
    user: _User,
    scene: str,
    start_of_log: datetime,
    offset: int,
    candidates: np.ndarray,
) -> list[tuple[int, str, np.ndarray]]:
    """One session, and the sessions its orders lead to: installation and accessories after a purchase,
    filter reminders for a purifier's owner."""
    rng = world.rng
    followups = []
    candidates = candidates[world.launch[candidates] <= offset]  # only what is on sale by then
    for item in _session(world, out, user, scene, start_of_log + timedelta(seconds=offset), candidates):
        category = world.category[item]
        if category in SERVICES["installation"][0] and rng.random() < 0.7:
            followups.append(
                (
                    offset + int(rng.integers(3600, 2 * 86400)),
                    "after_order",
                    _services_for(world, user, category, "installation"),
                )
            )
        if category in ACCESSORIES and rng.random() < 0.5:
            accessories = np.concatenate([world.by_category[c] for c in ACCESSORIES[category]])
            followups.append((offset + int(rng.integers(600, 86400)), "after_order", accessories))
        if category == "water_purifier":
            user.purifier_brand = world.brand[item]
        if category in ("water_purifier", "purifier_filter") and user.purifier_brand:
            filters = world.by_category["purifier_filter"]
            fits = filters[world.brand[filters] == user.purifier_brand]
            followups.append((offset + int(rng.integers(30, 45)) * 86400, "service_reminder", fits))
    return followups


def generate(out_dir: Path, seed: int = 7, size: DemoSize | None = None) -> dict[str, Path]:
    """Writes items.csv, users.csv, events.csv, dispatch_day.json, rank_request.json (one job of that
    day to offer to its technicians), job_log.csv, technician_habits.csv (the habits planted in the job
    log, for checking tiering) and touchpoints.toml (the storefront's per-touchpoint rules); returns
    their paths."""
    size = size or DemoSize()
    rng = np.random.default_rng(seed)
    world = _World(rng, size)
    events = _simulate(world, size)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = (
        "items.csv",
        "users.csv",
        "events.csv",
        "dispatch_day.json",
        "rank_request.json",
        "job_log.csv",
        "technician_habits.csv",
        "touchpoints.toml",
    )
    paths = {name: out_dir / name for name in names}
    items = world.items.assign(tags=world.items["tags"].map("|".join))
    items[["item_id", "title", "category", "brand", "price", "in_stock", "tags"]].to_csv(
        paths["items.csv"], index=False
    )
    pd.DataFrame(
        [
            (u.user_id, u.city, u.segment, u.age_band, "new_home" if u.new_home else "settled")
            for u in world.users
        ],
        columns=["user_id", "city", "segment", "age_band", "life_stage"],
    ).to_csv(paths["users.csv"], index=False)
    events.to_csv(paths["events.csv"], index=False)
    habits, day, job_log = technician_world(seed, size)
    paths["dispatch_day.json"].write_text(json.dumps(day, indent=1) + "\n")
    # A job from the middle of the day: technicians can reach it from home within its window.
    by_start = sorted(day["jobs"], key=lambda job: (job["timeWindow"]["start"], job["jobId"]))
    rank = {"job": by_start[len(by_start) // 2], "technicians": day["technicians"], "limit": 5}
    paths["rank_request.json"].write_text(json.dumps(rank, indent=1) + "\n")
    job_log.to_csv(paths["job_log.csv"], index=False)
    habits.to_csv(paths["technician_habits.csv"], index=False)
    paths["touchpoints.toml"].write_text(TOUCHPOINTS_TOML)
    return paths


TOUCHPOINTS_TOML = """\
# Per-touchpoint rules of the demo storefront (see models/recommend/touchpoints.py).
[default]
# Consumables and services come back; a sofa once bought does not.
repeatable_categories = ["purifier_filter", "cleaning", "repair"]

[touchpoint.home_feed]
max_per_category = 3

[touchpoint.category_page]
max_per_category = 5

[touchpoint.cart]
default_scene = "after_order"
max_per_category = 2

[touchpoint.order_complete]
default_scene = "after_order"
max_per_category = 2

[touchpoint.service_reminder]
categories = ["purifier_filter", "installation", "repair", "cleaning", "removal"]
default_scene = "service_reminder"
"""
