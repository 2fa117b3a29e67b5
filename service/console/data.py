"""What the console reads from Shifu's own files, as tables: the event log and exposures (DuckDB over
the daily JSON Lines partitions, models/event_format.py), the audience set, the tier table and the
supply-demand report. Each reader takes a path and returns pandas frames; an absent source gives empty
frames, not an error: a deployment without audiences or dispatch still has a console.

Attribution here is by `recommendation_id` only (the console reads live data and answers fast); the
offline analysis (python -m training experiments) also credits events without one by user and item.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

from models.event_format import EVENTS, EXPOSURES, LINE_FIELDS

MINUTE_S = 60.0
RECENT_MINUTES = 120  # the events-per-minute chart: the last two hours of the log
TAG_COLUMNS = ("user_id", "tag", "category", "since", "suggested_item_ids")


def _files(events: Path, kind: str) -> list[str]:
    return [str(p) for p in sorted(events.glob(f"*/{kind}-*.jsonl"))] if events.is_dir() else []


def _read(files: list[str], columns: dict[str, str]) -> str:
    quoted = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    spec = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
    return (
        f"read_json([{quoted}], format = 'newline_delimited', columns = {{{spec}}}, "
        "ignore_errors = true, union_by_name = true)"
    )


def open_log(events: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views `log` (valid events: epoch seconds `ts`, `value` a number)
    and `shown` (one row per exposure, the first line of each recommendation id)."""
    db = duckdb.connect(":memory:")
    event_files = _files(events, EVENTS)
    source = _read(event_files, dict.fromkeys(LINE_FIELDS, "VARCHAR")) if event_files else None
    db.execute(
        "CREATE TABLE log AS SELECT DISTINCT ON (event_id) user_id, item_id, event_type, "
        "coalesce(touchpoint, '') AS touchpoint, coalesce(scene, '') AS scene, "
        "coalesce(try_cast(value AS DOUBLE), 0) AS value, "
        "coalesce(recommendation_id, '') AS recommendation_id, "
        f"epoch(try_cast(timestamp AS TIMESTAMPTZ)) AS ts FROM {source} "
        "WHERE try_cast(timestamp AS TIMESTAMPTZ) IS NOT NULL AND user_id <> '' AND item_id <> ''"
        if source
        else "CREATE TABLE log (user_id VARCHAR, item_id VARCHAR, event_type VARCHAR, touchpoint VARCHAR, "
        "scene VARCHAR, value DOUBLE, recommendation_id VARCHAR, ts DOUBLE)"
    )
    exposure_files = _files(events, EXPOSURES)
    columns = {
        "recommendation_id": "VARCHAR",
        "timestamp": "VARCHAR",
        "user_id": "VARCHAR",
        "touchpoint": "VARCHAR",
        "experiment": "VARCHAR",
        "arm": "VARCHAR",
    }
    db.execute(
        "CREATE TABLE shown AS SELECT DISTINCT ON (recommendation_id) recommendation_id, user_id, "
        "touchpoint, experiment, arm, epoch(try_cast(timestamp AS TIMESTAMPTZ)) AS ts "
        f"FROM {_read(exposure_files, columns)} "
        "WHERE try_cast(timestamp AS TIMESTAMPTZ) IS NOT NULL AND experiment <> '' AND arm <> ''"
        if exposure_files
        else "CREATE TABLE shown (recommendation_id VARCHAR, user_id VARCHAR, touchpoint VARCHAR, "
        "experiment VARCHAR, arm VARCHAR, ts DOUBLE)"
    )
    return db


def user_arms(db: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per (experiment, arm, user), the columns models/experiment_stats.compare reads: exposures,
    impression events, clicks, carts and orders (distinct items per answer), revenue, first exposure."""
    return db.execute(
        """
        WITH acted AS (
            SELECT recommendation_id,
                   count(*) FILTER (WHERE event_type = 'impression') AS impression_events,
                   count(DISTINCT item_id) FILTER (WHERE event_type = 'click') AS clicks,
                   count(DISTINCT item_id) FILTER (WHERE event_type = 'cart') AS carts,
                   count(DISTINCT item_id) FILTER (WHERE event_type = 'order') AS orders,
                   coalesce(sum(value) FILTER (WHERE event_type = 'order'), 0) AS revenue
            FROM log WHERE recommendation_id <> '' GROUP BY recommendation_id)
        SELECT s.experiment, s.arm, s.user_id, count(*) AS exposures,
               coalesce(sum(a.impression_events), 0)::BIGINT AS impression_events,
               coalesce(sum(a.clicks), 0)::BIGINT AS clicks, coalesce(sum(a.carts), 0)::BIGINT AS carts,
               coalesce(sum(a.orders), 0)::BIGINT AS orders, coalesce(sum(a.revenue), 0.0) AS revenue,
               min(s.ts) AS first_exposure
        FROM shown s LEFT JOIN acted a USING (recommendation_id)
        GROUP BY s.experiment, s.arm, s.user_id"""
    ).df()


def exposures_per_hour(db: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return db.execute(
        "SELECT experiment, arm, to_timestamp(floor(ts / 3600) * 3600) AS hour, count(*) AS exposures "
        "FROM shown GROUP BY ALL ORDER BY hour"
    ).df()


def slot_counts(
    db: duckdb.DuckDBPyConnection, by: str, categories: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Impressions, clicks, carts, orders and revenue per `by` (columns of the log, `day` or `category`),
    each action credited to the touchpoint and scene of the impression of its recommendation id."""
    db.register(
        "categories", categories if categories is not None else pd.DataFrame({"item_id": [], "category": []})
    )
    return db.execute(
        f"""
        WITH origin AS (
            SELECT recommendation_id, arg_min(touchpoint, ts) AS touchpoint, arg_min(scene, ts) AS scene
            FROM log WHERE event_type = 'impression' AND recommendation_id <> '' AND touchpoint <> ''
            GROUP BY recommendation_id),
        credited AS (
            SELECT o.touchpoint, o.scene, e.item_id, e.event_type, e.value,
                   to_timestamp(floor(e.ts / 86400) * 86400) AS day
            FROM log e JOIN origin o USING (recommendation_id))
        SELECT {by}, count(*) FILTER (WHERE event_type = 'impression') AS impressions,
               count(*) FILTER (WHERE event_type = 'click') AS clicks,
               count(*) FILTER (WHERE event_type = 'cart') AS carts,
               count(*) FILTER (WHERE event_type = 'order') AS orders,
               coalesce(sum(value) FILTER (WHERE event_type = 'order'), 0) AS revenue
        FROM credited LEFT JOIN categories c USING (item_id) GROUP BY ALL ORDER BY ALL"""
    ).df()


def events_per_minute(db: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Events per minute and type over the last RECENT_MINUTES of the log (ending at its newest event)."""
    return db.execute(
        f"""
        SELECT to_timestamp(floor(ts / {MINUTE_S}) * {MINUTE_S}) AS minute, event_type, count(*) AS events
        FROM log WHERE ts > (SELECT max(ts) FROM log) - {RECENT_MINUTES * MINUTE_S}
        GROUP BY ALL ORDER BY minute"""
    ).df()


def current_version(directory: Path) -> Path | None:
    """The newest published version (models/versions.py names sort by time), or None."""
    if not directory.is_dir():
        return None
    versions = sorted(p for p in directory.iterdir() if (p / "manifest.json").is_file())
    return versions[-1] if versions else None


def manifest(version: Path) -> dict[str, object]:
    loaded = json.loads((version / "manifest.json").read_text())
    return loaded if isinstance(loaded, dict) else {}


def audience_tags(directory: Path) -> tuple[str, pd.DataFrame]:
    """The current audience version's name and tags (TAG_COLUMNS), or ("", empty)."""
    version = current_version(directory) if str(directory) else None
    if version is None or not (version / "tags.parquet").is_file():
        return "", pd.DataFrame(columns=list(TAG_COLUMNS))
    return version.name, pd.read_parquet(version / "tags.parquet", columns=list(TAG_COLUMNS))


def csv_of(directory: Path, name: str) -> tuple[str, pd.DataFrame]:
    """The current version's name and its CSV `name` (tiers, supply-demand), or ("", empty)."""
    version = current_version(directory)
    if version is None or not (version / name).is_file():
        return "", pd.DataFrame()
    return version.name, pd.read_csv(version / name)
