"""`python -m training audiences`: every tag of every user as of a time, computed in DuckDB from the event
log (read and checked as training reads it: training/event_store.py), with suggested items per (user,
tag), published as a versioned audience set: tags.parquet and audiences.html (training/audience_report.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from models.audiences import rules as tag_rules
from models.audiences.audience_set import FORMAT, REPORT_FILE, TAGS_FILE
from models.audiences.rules import TagRule
from models.versions import publish
from training import audience_report, audience_suggest, engines
from training.audience_sql import tags_sql
from training.event_store import EventStore
from training.readers import DEFAULT_EVENT_WEIGHTS, ReadReport, read_items

SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("tag", pa.string()),
        ("category", pa.string()),
        ("since", pa.timestamp("us", tz="UTC")),
        ("suggested_item_ids", pa.list_(pa.string())),
    ]
)


@dataclass(frozen=True)
class AudienceConfig:
    as_of: float | None = None  # Unix seconds; the newest event when None
    suggestions: int = 5  # suggested items per (user, tag)
    recommender_limit: int = (
        2000  # (user, tag) rows per tag answered by the recommender, the rest by popularity
    )
    memory_gb: float = 4.0


@dataclass(frozen=True)
class AudienceResult:
    version_dir: Path
    tags: pd.DataFrame  # the published table
    as_of: float
    report: ReadReport


def compute_tags(
    engine: engines.Engine, events: Path, items: pd.DataFrame, rules: list[TagRule], as_of: float | None
) -> tuple[pd.DataFrame, float, ReadReport]:
    """(user_id, tag, category, since in Unix seconds, item_ids) per tagged (user, tag, category), the
    as-of time used, and what reading the log kept and dropped. Leaves `tag_events` in the engine."""
    weights = dict(DEFAULT_EVENT_WEIGHTS)
    for rule in rules:
        weights.update({name: weights.get(name, 0.0) for name in rule.event_types()})
    store = EventStore(engine, weights, items["item_id"].to_numpy().astype(str))
    report = store.load(events)
    engine.register("item_categories", items[["item_id", "category"]].astype(str))
    newest = engine.frame("SELECT max(timestamp) AS t FROM valid WHERE copy = 1")["t"][0]
    if as_of is None:
        if pd.isna(newest):
            raise ValueError(f"{events}: no valid event, so no as-of time (give --as-of)")
        as_of = float(newest)
    engine.table(
        "tag_events",
        f"""SELECT v.user_id, v.item_id, c.category, v.event_type, v.timestamp
            FROM valid v JOIN item_categories c ON c.item_id = v.item_id
            WHERE v.copy = 1 AND v.timestamp <= {as_of!r}""",
    )
    engine.drop("valid")
    engine.drop("checked")
    tags = engine.frame(tags_sql(rules, as_of) + " ORDER BY tag, user_id, category")
    return tags, as_of, report


def table(tags: pd.DataFrame, suggested: list[list[str]]) -> pa.Table:
    """The published table, with exactly SCHEMA's columns."""
    since = pd.to_datetime(tags["since"].astype(float), unit="s", utc=True)
    return pa.table(
        {
            "user_id": tags["user_id"].astype(str).tolist(),
            "tag": tags["tag"].astype(str).tolist(),
            "category": [None if pd.isna(c) else str(c) for c in tags["category"]],
            "since": pa.array(since, type=pa.timestamp("us", tz="UTC")),
            "suggested_item_ids": suggested,
        },
        schema=SCHEMA,
    )


def run(
    events: Path,
    items_path: Path,
    out: Path,
    tags_file: Path | None = None,
    model_dir: Path | None = None,
    config: AudienceConfig = AudienceConfig(),
) -> AudienceResult:
    rules = tag_rules.load(tags_file)
    items, _ = read_items(items_path)
    with engines.opened("duckdb", memory_gb=config.memory_gb) as engine:
        tags, as_of, report = compute_tags(engine, events, items, rules, config.as_of)
        popular = audience_suggest.popular(engine, items, config.suggestions)
    suggester = audience_suggest.Suggester(
        items, popular, model_dir, config.suggestions, config.recommender_limit
    )
    suggested = suggester.suggest(tags)
    published = table(tags, suggested)
    frame = published.to_pandas()

    def write(directory: Path) -> dict[str, Any]:
        pq.write_table(published, directory / TAGS_FILE)
        audience_report.write(frame, rules, as_of, directory / REPORT_FILE)
        return {
            "format": FORMAT,
            "as_of": pd.Timestamp(as_of, unit="s", tz="UTC").isoformat(),
            "events": str(events),
            "items": str(items_path),
            "tags_file": str(tags_file or tag_rules.DEFAULT_FILE),
            "model_version": suggester.model_version,
            "rules": [rule.name for rule in rules],
            "counts": {rule.name: int(np.sum(frame["tag"] == rule.name)) for rule in rules},
        }

    return AudienceResult(publish(out, write), frame, as_of, report)
