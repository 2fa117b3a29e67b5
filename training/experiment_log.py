"""The event log and the experiments' exposures in DuckDB, joined into what the analysis counts: per
experiment, arm and user, the answers shown and what they led to.

Exposures (`DIR/YYYY-MM-DD/exposures-wN.jsonl`, models/event_format.py EXPOSURE_FIELDS) are read by
DuckDB beside the events, which the event store reads and checks as training does (training/event_store.py).

Attribution: a click, cart or order that carries a `recommendation_id` belongs to the answer of that id.
One that carries none (a client that does not pass the id on, an order placed later in the cart) belongs
to the latest answer shown to the same user holding the same item in the `window_s` seconds before it
(24 h by default). Clicks, carts and orders count distinct items per answer, so a double click is one
click and a rate per answer stays a count of items; revenue adds up the orders' `value`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from models.event_format import EXPOSURES
from training.engines import DuckDB
from training.event_store import EventStore
from training.readers import DEFAULT_EVENT_WEIGHTS, ReadReport

ACTIONS = ("click", "cart", "order")
WINDOW_S = 24 * 3600.0


@dataclass(frozen=True)
class Period:
    """The events and exposures analysed: Unix seconds, either end open (None)."""

    since: float | None = None
    until: float | None = None

    def sql(self, column: str) -> str:
        parts = [f"{column} >= {self.since!r}" if self.since is not None else "TRUE"]
        if self.until is not None:
            parts.append(f"{column} < {self.until!r}")
        return " AND ".join(parts)


def exposure_files(events: Path) -> list[Path]:
    return sorted(events.glob(f"*/{EXPOSURES}-*.jsonl")) if events.is_dir() else []


def load(engine: DuckDB, events: Path, period: Period) -> tuple[ReadReport, int]:
    """The log's valid events into `log` and its exposures into `exposures` (`shown`: one row per item
    of an answer); returns the events' read report and how many exposure lines were unreadable."""
    store = EventStore(engine, DEFAULT_EVENT_WEIGHTS, None)
    report = store.load(events)
    engine.table("log", f"SELECT * FROM valid WHERE copy = 1 AND {period.sql('timestamp')}")
    engine.drop("valid")
    engine.drop("checked")
    files = exposure_files(events)
    bad = _load_exposures(engine, files, period) if files else _no_exposures(engine)
    engine.table(
        "shown",
        "SELECT recommendation_id, user_id, timestamp, unnest(item_ids) AS item_id FROM exposures",
    )
    return report, bad


def _no_exposures(engine: DuckDB) -> int:
    engine.table(
        "exposures",
        "SELECT '' AS recommendation_id, 0.0 AS timestamp, '' AS user_id, '' AS touchpoint, "
        "'' AS experiment, '' AS arm, CAST([] AS VARCHAR[]) AS item_ids WHERE FALSE",
    )
    return 0


def _load_exposures(engine: DuckDB, files: list[Path], period: Period) -> int:
    """Every well-formed exposure (all fields present, a readable time, a list of items) once per
    recommendation id, the first written kept (a retried write repeats it)."""
    names = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
    lines = (
        f"read_csv({names}, columns = {{'line': 'VARCHAR'}}, header = false, delim = '\\x01', "
        "quote = '', escape = '', auto_detect = false)"
    )
    text = ", ".join(f"j->>'$.{c}' AS {c}" for c in ("recommendation_id", "user_id", "touchpoint"))
    engine.table(
        "exposure_lines",
        f"""
        WITH parsed AS (SELECT try_cast(line AS JSON) AS j FROM {lines} WHERE trim(coalesce(line, '')) <> '')
        SELECT {text}, j->>'$.experiment' AS experiment, j->>'$.arm' AS arm,
               epoch(try_cast(j->>'$.timestamp' AS TIMESTAMPTZ)) AS timestamp,
               CASE WHEN json_type(j->'$.item_ids') = 'ARRAY' THEN CAST(j->'$.item_ids' AS VARCHAR[]) END
                   AS item_ids
        FROM parsed""",
    )
    complete = (
        "coalesce(recommendation_id, '') <> '' AND coalesce(user_id, '') <> '' "
        "AND coalesce(experiment, '') <> '' AND coalesce(arm, '') <> '' "
        "AND timestamp IS NOT NULL AND item_ids IS NOT NULL"
    )
    engine.table(
        "exposures",
        f"""
        SELECT recommendation_id, timestamp, user_id, touchpoint, experiment, arm, item_ids FROM (
            SELECT *, row_number() OVER (PARTITION BY recommendation_id ORDER BY timestamp) AS k
            FROM exposure_lines WHERE {complete})
        WHERE k = 1 AND {period.sql("timestamp")}""",
    )
    bad = engine.frame(f"SELECT count(*) AS n FROM exposure_lines WHERE NOT coalesce({complete}, FALSE)")
    engine.drop("exposure_lines")
    return int(bad["n"].iloc[0])


def credited_sql(origins: str, keys: tuple[str, ...], window_s: float) -> str:
    """SQL: the log's clicks, carts and orders credited to an origin, a row of the table `origins`
    (recommendation_id, user_id, item_id, timestamp and `keys`): by recommendation id (the id's earliest
    row gives its keys) or, for events without one, the latest origin of the same user and item in the
    window before. Columns: origin_id, `keys`, user_id, item_id, event_type, value."""
    picked = "".join(f", arg_min({k}, timestamp) AS {k}" for k in keys)
    taken = "".join(f", o.{k}" for k in keys)
    return f"""
        SELECT o.recommendation_id AS origin_id{taken}, e.user_id, e.item_id, e.event_type, e.value
        FROM log e
        JOIN (SELECT recommendation_id{picked} FROM {origins} WHERE recommendation_id <> ''
              GROUP BY recommendation_id) o
          ON o.recommendation_id = e.recommendation_id
        WHERE e.recommendation_id <> '' AND e.event_type IN {ACTIONS}
        UNION ALL
        SELECT origin_id{"".join(f", {k}" for k in keys)}, user_id, item_id, event_type, value FROM (
            SELECT o.recommendation_id AS origin_id{taken}, e.user_id, e.item_id, e.event_type, e.value,
                   row_number() OVER (PARTITION BY e._row ORDER BY o.timestamp DESC) AS k
            FROM log e JOIN {origins} o
              ON o.user_id = e.user_id AND o.item_id = e.item_id
             AND o.timestamp <= e.timestamp AND e.timestamp < o.timestamp + {window_s!r}
            WHERE e.recommendation_id = '' AND e.event_type IN {ACTIONS})
        WHERE k = 1"""


def user_arms(engine: DuckDB, window_s: float = WINDOW_S) -> pd.DataFrame:
    """Per (experiment, arm, user): exposures (answers shown), impression events under those answers,
    clicks, carts and orders (distinct items per answer), revenue and the user's first exposure."""
    credited = credited_sql("shown", (), window_s)
    return engine.frame(
        f"""
        WITH credited AS ({credited}),
        per_answer AS (
            SELECT origin_id AS recommendation_id,
                   count(DISTINCT CASE WHEN event_type = 'click' THEN item_id END) AS clicks,
                   count(DISTINCT CASE WHEN event_type = 'cart' THEN item_id END) AS carts,
                   count(DISTINCT CASE WHEN event_type = 'order' THEN item_id END) AS orders,
                   coalesce(sum(CASE WHEN event_type = 'order' THEN value END), 0) AS revenue
            FROM credited GROUP BY origin_id),
        impressions AS (
            SELECT recommendation_id, count(*) AS impression_events FROM log
            WHERE event_type = 'impression' AND recommendation_id <> '' GROUP BY recommendation_id)
        SELECT x.experiment, x.arm, x.user_id, count(*) AS exposures,
               coalesce(sum(i.impression_events), 0) AS impression_events,
               coalesce(sum(a.clicks), 0) AS clicks, coalesce(sum(a.carts), 0) AS carts,
               coalesce(sum(a.orders), 0) AS orders, coalesce(sum(a.revenue), 0.0) AS revenue,
               min(x.timestamp) AS first_exposure
        FROM exposures x
        LEFT JOIN per_answer a ON a.recommendation_id = x.recommendation_id
        LEFT JOIN impressions i ON i.recommendation_id = x.recommendation_id
        GROUP BY x.experiment, x.arm, x.user_id"""
    )
