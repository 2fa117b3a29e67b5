"""The event log out of core: read, validated, split and aggregated in a SQL engine, so that only the
aggregates (users × items confidences, LightFM contexts, popularity counts, evaluation queries) meet
numpy and pandas.

Every rule is one SQL statement, here and in the modules below, run unchanged by either engine
(training/engines.py): DuckDB, embedded and spilling to disk, by default; Spark for logs that outgrow one
machine. The engines only differ in how they read files into `raw_events` (every column as text) and
in two expressions.

Checking (training/event_checks.py): the rules every event must pass, and the order of events.
Splitting (training/event_split.py): the holdout of test and validation events per user.
Here: the aggregates each fitting learns from, the evaluation's queries and the touchpoint report's counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.event_format import EVENT_COLUMNS
from models.recommend.components.als import Als
from training import engines, event_checks, event_split
from training.engines import Engine
from training.event_checks import ORDER
from training.readers import ReadReport, input_files

SESSION_SECONDS = 2 * 3600  # a visit: what the user touched in the two hours before the query
SESSION_ITEMS = 3


class Part(Enum):
    """Which events a model is fitted on (SQL predicates over `events.part`)."""

    VALIDATION_TRAIN = "part = 'train'"
    TEST_TRAIN = "part IN ('train', 'validation', 'gap')"
    EVERYTHING = "TRUE"


# The events queried against each fitting's models.
QUERIES_OF = {Part.VALIDATION_TRAIN: "part = 'validation'", Part.TEST_TRAIN: "part = 'test'"}


@dataclass(frozen=True)
class Aggregates:
    """One fitting's data, as numpy arrays: what training/dataset.py turns into TrainingData."""

    user_ids: np.ndarray  # str, sorted: users with a weighted event
    pair_users: np.ndarray  # int32 user index per (user, item) with weight, sorted by (user, item)
    pair_items: np.ndarray  # int32 item index (catalog order)
    pair_confidence: np.ndarray  # float32, summed (decayed) weights
    pair_ordered: np.ndarray  # bool
    pair_last_seen: np.ndarray  # float64, the Unix time of the pair's latest event
    # (Narrow types and codes: a log of 50M events has tens of millions of pairs and contexts.)
    context_users: np.ndarray  # int32 user index per context: (user, scene, touchpoint) with positives
    context_scenes: np.ndarray  # int32 index into scene_names
    context_touchpoints: np.ndarray  # int32 index into touchpoint_names
    scene_names: np.ndarray  # str, sorted ("" for none)
    touchpoint_names: np.ndarray  # str, sorted ("" for none)
    positive_contexts: np.ndarray  # int32 context index per (context, item) positive
    positive_items: np.ndarray  # int32
    popularity_items: np.ndarray  # int64, per (item, scene, city) with events
    popularity_scenes: np.ndarray  # str
    popularity_cities: np.ndarray  # str
    popularity_weights: np.ndarray  # float64


@dataclass(frozen=True)
class QueryRows:
    """What evaluate.py makes queries of: the test items per (user, scene, touchpoint) the user had not
    touched in training, and each such visit's session (latest first)."""

    relevant: pd.DataFrame  # user_id, scene, touchpoint, item_code
    sessions: pd.DataFrame  # user_id, scene, touchpoint, item_id, recent (1 = latest)


class EventStore:
    """The validated events of one training job in an engine. `weights` gives every accepted event type;
    `catalog` the item ids in catalog order (their index is the item code), or None to accept any item."""

    def __init__(self, engine: Engine, weights: dict[str, float], catalog: np.ndarray | None) -> None:
        self.engine, self.weights, self.catalog = engine, weights, catalog
        self.engine.register(
            "event_weights", pd.DataFrame({"event_type": list(weights), "weight": list(weights.values())})
        )
        if catalog is not None:
            self.engine.register(
                "catalog",
                pd.DataFrame({"item_id": catalog.astype(str), "item_code": np.arange(catalog.size)}),
            )

    # Reading and validating.

    def load(self, path: Path) -> ReadReport:
        """Reads a file, folder or glob into `valid` and returns what was kept and dropped."""
        report = ReadReport(str(path))
        self.engine.read(input_files(path), report)
        event_checks.check(self.engine, self.catalog is not None, report)
        return report.finished()

    def load_frame(self, frame: pd.DataFrame, source: str = "events") -> ReadReport:
        """The same rules over a table already in memory (tests, small tools)."""
        report = ReadReport(source)
        text = event_checks.raw_events(frame)
        report.rows_read = len(text)
        self.engine.register("raw_events", text)
        event_checks.check(self.engine, self.catalog is not None, report)
        return report.finished()

    def frame(self) -> pd.DataFrame:
        """The validated events as a table (small logs only: tests and tools), in event order."""
        return self.engine.frame(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM valid WHERE copy = 1 ORDER BY {ORDER}"
        )

    # The holdout.

    def split(self, positive_weight: float, fraction: float) -> None:
        """`events`: the valid events with their `part` (training/event_split.py)."""
        event_split.split(self.engine, positive_weight, fraction)

    def count(self, part: Part = Part.EVERYTHING) -> int:
        return int(self.engine.frame(f"SELECT count(*) AS n FROM events WHERE {part.value}")["n"][0])

    # Aggregates.

    def aggregates(
        self, part: Part, half_life_days: float | None, positive_weight: float, cities: pd.DataFrame | None
    ) -> Aggregates:
        """`cities`: user_id, city (from the users table), for popularity per city."""
        if cities is None:
            cities = pd.DataFrame({"user_id": pd.Series(dtype=str), "city": pd.Series(dtype=str)})
        self.engine.register("user_cities", cities[["user_id", "city"]].astype(str))
        self._fitting(part, half_life_days)
        users = self.engine.frame("SELECT user_id FROM fitting_users ORDER BY user_code")
        pairs = self.engine.frame(
            f"""SELECT CAST(user_code AS INT) AS user_code, CAST(item_code AS INT) AS item_code,
                       CAST(confidence AS FLOAT) AS confidence, CAST(ordered AS TINYINT) AS ordered,
                       CAST(last_seen AS DOUBLE) AS last_seen
                FROM ({_PAIRS}) p ORDER BY user_code, item_code"""
        )
        self.engine.table(
            "fitting_positives",
            f"""
            SELECT DISTINCT u.user_code, f.scene, f.touchpoint, f.item_code
            FROM fitting f JOIN fitting_users u ON u.user_id = f.user_id WHERE f.w >= {positive_weight!r}
            """,
        )
        self.engine.table(
            "fitting_contexts",
            """
            SELECT user_code, scene, touchpoint,
                   row_number() OVER (ORDER BY user_code, scene, touchpoint) - 1 AS context_code
            FROM (SELECT DISTINCT user_code, scene, touchpoint FROM fitting_positives) c
            """,
        )
        scenes = self.engine.frame("SELECT DISTINCT scene FROM fitting_contexts ORDER BY scene")["scene"]
        touchpoints = self.engine.frame(
            "SELECT DISTINCT touchpoint FROM fitting_contexts ORDER BY touchpoint"
        )["touchpoint"]
        contexts = self.engine.frame(
            """
            SELECT CAST(user_code AS INT) AS user_code,
                   CAST(dense_rank() OVER (ORDER BY scene) - 1 AS INT) AS scene_code,
                   CAST(dense_rank() OVER (ORDER BY touchpoint) - 1 AS INT) AS touchpoint_code
            FROM fitting_contexts ORDER BY context_code
            """
        )
        positives = self.engine.frame(
            """
            SELECT CAST(c.context_code AS INT) AS context_code, CAST(p.item_code AS INT) AS item_code
            FROM fitting_positives p JOIN fitting_contexts c
              ON c.user_code = p.user_code AND c.scene = p.scene AND c.touchpoint = p.touchpoint
            ORDER BY c.context_code, p.item_code
            """
        )
        popularity = self.engine.frame(
            """
            SELECT f.item_code, f.scene, coalesce(c.city, '') AS city, sum(f.w) AS w
            FROM fitting f LEFT JOIN user_cities c ON c.user_id = f.user_id
            GROUP BY f.item_code, f.scene, coalesce(c.city, '')
            ORDER BY f.item_code, f.scene, city
            """
        )
        for name in ("fitting_contexts", "fitting_positives", "fitting_users", "fitting"):
            self.engine.drop(name)
        # Copies: numpy views of the engine's result are read-only, and LightFM writes into its inputs.
        return Aggregates(
            user_ids=users["user_id"].to_numpy().astype(str),
            pair_users=pairs["user_code"].to_numpy(dtype=np.int32, copy=True),
            pair_items=pairs["item_code"].to_numpy(dtype=np.int32, copy=True),
            pair_confidence=pairs["confidence"].to_numpy(dtype=np.float32, copy=True),
            pair_ordered=pairs["ordered"].to_numpy() > 0,
            pair_last_seen=pairs["last_seen"].to_numpy(dtype=np.float64, copy=True),
            context_users=contexts["user_code"].to_numpy(dtype=np.int32, copy=True),
            context_scenes=contexts["scene_code"].to_numpy(dtype=np.int32, copy=True),
            context_touchpoints=contexts["touchpoint_code"].to_numpy(dtype=np.int32, copy=True),
            scene_names=scenes.to_numpy().astype(str),
            touchpoint_names=touchpoints.to_numpy().astype(str),
            positive_contexts=positives["context_code"].to_numpy(dtype=np.int32, copy=True),
            positive_items=positives["item_code"].to_numpy(dtype=np.int32, copy=True),
            popularity_items=popularity["item_code"].to_numpy(dtype=np.int64),
            popularity_scenes=popularity["scene"].to_numpy().astype(str),
            popularity_cities=popularity["city"].to_numpy().astype(str),
            popularity_weights=popularity["w"].to_numpy(dtype=np.float64, copy=True),
        )

    def _fitting(self, part: Part, half_life_days: float | None) -> None:
        """`fitting`: the part's events with their decayed weight `w`; `fitting_users`: its users with
        a weighted event, coded in id order."""
        decay = (
            f"power(0.5, (m.newest - e.timestamp) / 86400.0 / {float(half_life_days)!r})"
            if half_life_days
            else "1.0"
        )
        self.engine.table(
            "fitting",
            f"""
            SELECT e.user_id, e.item_code, e.event_type, e.scene, e.touchpoint, e.timestamp,
                   e.weight * {decay} AS w
            FROM events e CROSS JOIN (SELECT max(timestamp) AS newest FROM events WHERE {part.value}) m
            WHERE {part.value}
            """,
        )
        self.engine.table(
            "fitting_users",
            """
            SELECT user_id, row_number() OVER (ORDER BY user_id) - 1 AS user_code
            FROM (SELECT DISTINCT user_id FROM fitting WHERE w > 0) u
            """,
        )

    def engine_als(self, part: Part, half_life_days: float | None, params: Any, seed: int) -> Als:
        """ALS fitted where the confidences are (Spark MLlib, implicit preferences), for a user × item
        matrix too large for one machine; its user rows are those of aggregates() for the same part."""
        if not isinstance(self.engine, engines.Spark) or self.catalog is None:
            raise ValueError("ALS in the engine needs the Spark engine (--engine spark) and a catalog")
        self._fitting(part, half_life_days)
        n_users = self.engine.frame("SELECT count(*) AS n FROM fitting_users")["n"][0]
        user_factors, item_factors = self.engine.als(_PAIRS, int(n_users), self.catalog.size, params, seed)
        self.engine.drop("fitting_users")
        self.engine.drop("fitting")
        return Als(
            user_factors, item_factors, params.regularization, params.alpha, params.recency_half_lives[0]
        )

    def test_rows(self, part: Part) -> QueryRows:
        """The queries of the models fitted on `part` (the validation or the test split)."""
        train, test = part.value, QUERIES_OF[part]
        relevant = self.engine.frame(
            f"""
            WITH seen AS (SELECT DISTINCT user_id, item_id FROM events WHERE {train}),
                 tested AS (SELECT DISTINCT user_id, scene, touchpoint, item_id, item_code
                            FROM events WHERE {test})
            SELECT t.user_id, t.scene, t.touchpoint, t.item_code FROM tested t
            LEFT JOIN seen s ON s.user_id = t.user_id AND s.item_id = t.item_id
            WHERE s.user_id IS NULL
            ORDER BY t.user_id, t.scene, t.touchpoint, t.item_code
            """
        )
        sessions = self.engine.frame(
            f"""
            WITH starts AS (SELECT user_id, scene, touchpoint, min(timestamp) AS start
                            FROM events WHERE {test} GROUP BY user_id, scene, touchpoint),
                 visit AS (
                    SELECT q.user_id, q.scene, q.touchpoint, r.item_id, r.timestamp,
                           r.event_type AS r_type, r.scene AS r_scene, r.touchpoint AS r_touchpoint,
                           r.recommendation_id AS r_rec, r.value_text AS r_value,
                           row_number() OVER (
                               PARTITION BY q.user_id, q.scene, q.touchpoint, r.item_id
                               ORDER BY r.timestamp DESC, r.event_type DESC, r.scene DESC,
                                        r.touchpoint DESC, r.recommendation_id DESC, r.value_text DESC
                           ) AS latest
                    FROM starts q JOIN (SELECT * FROM events WHERE {train}) r
                      ON r.user_id = q.user_id AND r.timestamp < q.start
                     AND r.timestamp >= q.start - {SESSION_SECONDS}),
                 ranked AS (
                    SELECT user_id, scene, touchpoint, item_id, row_number() OVER (
                        PARTITION BY user_id, scene, touchpoint
                        ORDER BY timestamp DESC, item_id DESC, r_type DESC, r_scene DESC,
                                 r_touchpoint DESC, r_rec DESC, r_value DESC) AS recent
                    FROM visit WHERE latest = 1)
            SELECT user_id, scene, touchpoint, item_id, recent FROM ranked WHERE recent <= {SESSION_ITEMS}
            ORDER BY user_id, scene, touchpoint, recent
            """
        )
        return QueryRows(relevant, sessions)

    # Reports.

    def touchpoint_counts(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(events per touchpoint, scene and type, attributed to the recommendation's origin; recommended
        impressions and how many converted, per the origin's touchpoint and scene), for
        training/touchpoint_report.py."""
        origin = f"""
            origin AS (SELECT recommendation_id, touchpoint, scene FROM (
                SELECT recommendation_id, touchpoint, scene,
                       row_number() OVER (PARTITION BY recommendation_id ORDER BY {ORDER}) AS k
                FROM events WHERE event_type = 'impression' AND recommendation_id <> '') s WHERE k = 1)"""
        counted = self.engine.frame(
            f"""
            WITH {origin},
            attributed AS (
                SELECT e.event_type,
                       CASE WHEN o.recommendation_id IS NULL THEN e.touchpoint
                            ELSE o.touchpoint END AS touchpoint,
                       CASE WHEN o.recommendation_id IS NULL THEN e.scene ELSE o.scene END AS scene
                FROM events e LEFT JOIN origin o ON o.recommendation_id = e.recommendation_id
                WHERE e.event_type IN ('impression', 'click', 'order'))
            SELECT touchpoint, scene,
                   sum(CASE WHEN event_type = 'impression' THEN 1 ELSE 0 END) AS impressions,
                   sum(CASE WHEN event_type = 'click' THEN 1 ELSE 0 END) AS clicks,
                   sum(CASE WHEN event_type = 'order' THEN 1 ELSE 0 END) AS orders
            FROM attributed WHERE touchpoint <> '' GROUP BY touchpoint, scene
            """
        )
        converted = self.engine.frame(
            f"""
            WITH {origin},
            pairs AS (
                SELECT e.recommendation_id,
                       sum(CASE WHEN e.event_type = 'impression' THEN 1 ELSE 0 END) AS shown,
                       sum(CASE WHEN e.event_type = 'click' THEN 1 ELSE 0 END) AS clicked,
                       sum(CASE WHEN e.event_type = 'order' THEN 1 ELSE 0 END) AS ordered
                FROM events e JOIN origin o ON o.recommendation_id = e.recommendation_id
                WHERE e.event_type IN ('impression', 'click', 'order')
                GROUP BY e.recommendation_id, e.item_id)
            SELECT o.touchpoint, o.scene, sum(p.shown) AS recommended_impressions,
                   sum(least(p.clicked, p.shown)) AS clicked_impressions,
                   sum(least(p.ordered, p.shown)) AS ordered_impressions
            FROM pairs p JOIN origin o ON o.recommendation_id = p.recommendation_id
            WHERE p.shown > 0 GROUP BY o.touchpoint, o.scene
            """
        )
        return counted, converted


def read_events(
    path: Path, weights: dict[str, float], item_ids: set[str] | None = None
) -> tuple[pd.DataFrame, ReadReport]:
    """A small log's validated events as a table (tests and tools; training keeps them in the engine):
    timestamp (Unix seconds), user_id, item_id, event_type, touchpoint, scene, value (NaN when absent),
    recommendation_id, in event order."""
    with engines.opened("duckdb", memory_gb=1.0) as engine:
        store = EventStore(engine, weights, None if item_ids is None else np.array(sorted(item_ids)))
        report = store.load(path)
        return store.frame(), report


# A fitting's (user, item) pairs with weight: summed weight, and whether the user ordered the item.
_PAIRS = """
    SELECT u.user_code, f.item_code, sum(f.w) AS confidence,
           max(CASE WHEN f.event_type = 'order' THEN 1 ELSE 0 END) AS ordered,
           max(f.timestamp) AS last_seen
    FROM fitting f JOIN fitting_users u ON u.user_id = f.user_id
    WHERE f.w > 0 GROUP BY u.user_code, f.item_code"""
