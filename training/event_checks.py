"""The rules an event of the log must pass to be trained on, as SQL run unchanged by either engine
(training/engines.py), over `raw_events` (every column as text).

Rules, in the order a row is judged (the first broken one names the drop):
missing user_id / item_id / event_type / timestamp; malformed_timestamp (Unix seconds or ISO 8601);
unknown_event_type (no weight); malformed_value (not a finite number); unknown_item (not in the
catalog, when one is given); duplicate (the same event again: every field equal; the first is kept).

Order: events are ordered by (timestamp, then every other field), so that both engines, and any order of
the input files, give the same split and the same aggregates.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.event_format import EVENT_COLUMNS
from training.engines import Engine
from training.readers import EXAMPLES_KEPT, ReadReport

TEXT_COLUMNS = EVENT_COLUMNS  # what raw_events carries, as text ("" when absent)
LARGEST = "1.7976931348623157e308"  # |x| <= this is false for NaN and ±inf in both engines
# The total order of events (after duplicates are gone no two events tie).
ORDER = "timestamp, user_id, item_id, event_type, scene, touchpoint, recommendation_id, value_text"


def check(engine: Engine, with_catalog: bool, report: ReadReport) -> None:
    """`raw_events` judged into `checked` (every row, with the `reason` it is dropped for, "" when kept)
    and `valid` (the kept rows, `copy` 1 for the first of equal events); the drops counted in `report`.
    `with_catalog`: whether the engine holds a `catalog` table that items must be in."""
    engine.table("checked", _checked(engine, with_catalog))
    engine.table(
        "valid",
        f"""
            SELECT * FROM (
                SELECT *, row_number() OVER (PARTITION BY {ORDER} ORDER BY _row) AS copy
                FROM checked WHERE reason = '')
            """,
    )
    _report_drops(engine, report)
    engine.drop("raw_events")


def _checked(engine: Engine, with_catalog: bool) -> str:
    unknown_item = "WHEN item_code IS NULL THEN 'unknown_item'" if with_catalog else ""
    catalog = "LEFT JOIN catalog c ON c.item_id = p.item_id" if with_catalog else ""
    code = "c.item_code" if with_catalog else "CAST(NULL AS BIGINT)"
    iso = engine.iso_seconds("ts_text")
    return f"""
            WITH t AS (
                SELECT _row,
                    trim(coalesce(timestamp, '')) AS ts_text, trim(coalesce(user_id, '')) AS user_id,
                    trim(coalesce(item_id, '')) AS item_id,
                    lower(trim(coalesce(event_type, ''))) AS event_type,
                    trim(coalesce(touchpoint, '')) AS touchpoint, trim(coalesce(scene, '')) AS scene,
                    trim(coalesce(value, '')) AS value_text,
                    trim(coalesce(recommendation_id, '')) AS recommendation_id
                FROM raw_events),
            p AS (SELECT *, coalesce(try_cast(ts_text AS DOUBLE), {iso}) AS timestamp,
                         try_cast(value_text AS DOUBLE) AS value FROM t),
            j AS (SELECT p.*, w.weight, {code} AS item_code FROM p
                  LEFT JOIN event_weights w ON w.event_type = p.event_type {catalog})
            SELECT *, CASE
                WHEN user_id = '' THEN 'missing_user_id'
                WHEN item_id = '' THEN 'missing_item_id'
                WHEN event_type = '' THEN 'missing_event_type'
                WHEN ts_text = '' THEN 'missing_timestamp'
                WHEN NOT coalesce(abs(timestamp) <= {LARGEST}, FALSE) THEN 'malformed_timestamp'
                WHEN weight IS NULL THEN 'unknown_event_type'
                WHEN value_text <> '' AND NOT coalesce(abs(value) <= {LARGEST}, FALSE) THEN 'malformed_value'
                {unknown_item}
                ELSE '' END AS reason
            FROM j"""


def _report_drops(engine: Engine, report: ReadReport) -> None:
    """Each reason's count, with the first rows dropped for it as they were read."""
    dropped = engine.frame(
        """
            SELECT reason, count(*) AS n FROM checked WHERE reason <> '' GROUP BY reason
            UNION ALL SELECT 'duplicate' AS reason, count(*) AS n FROM valid WHERE copy > 1
            """
    )
    examples = engine.frame(
        f"""
            SELECT x.reason, x._row, r._raw FROM (
                SELECT reason, _row, row_number() OVER (PARTITION BY reason ORDER BY _row) AS k FROM (
                    SELECT reason, _row FROM checked WHERE reason <> ''
                    UNION ALL SELECT 'duplicate' AS reason, _row FROM valid WHERE copy > 1) d) x
            JOIN raw_events r ON r._row = x._row
            WHERE x.k <= {EXAMPLES_KEPT} ORDER BY x.reason, x._row
            """
    )
    shown = {str(reason): rows for reason, rows in examples.groupby("reason", sort=True)}
    for reason, count in sorted(zip(dropped["reason"], dropped["n"], strict=True)):
        rows = shown.get(str(reason), examples.iloc[:0])
        lines = [engine.example(int(r), str(raw)) for r, raw in zip(rows["_row"], rows["_raw"], strict=True)]
        report.drop(str(reason), lines, int(count))


def raw_events(frame: pd.DataFrame) -> pd.DataFrame:
    """A table in memory as the engines read a file into `raw_events`: TEXT_COLUMNS as text, the row's
    number `_row` and its fields as one line `_raw` (for the examples of drops)."""
    text = pd.DataFrame({c: _text(frame[c]) if c in frame else "" for c in TEXT_COLUMNS})
    text.insert(0, "_row", np.arange(len(text), dtype=np.int64))
    text["_raw"] = frame.astype(str).agg(",".join, axis=1) if len(frame) else ""
    return text


def _text(column: pd.Series) -> pd.Series:
    """A column as the text a file would hold: "" for missing, 1.0 written as 1."""

    def one(value: object) -> str:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return format(value, "g")
        return repr(value) if isinstance(value, float) else str(value)

    return column.astype(object).where(column.notna(), "").map(one)
