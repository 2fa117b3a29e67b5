"""Random and malformed rows at every file reader, in every format: a clean DataError or a frame with
every dropped row counted, never another exception."""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training.event_store import read_events
from training.readers import (
    DEFAULT_EVENT_WEIGHTS,
    DataError,
    ReadReport,
    read_items,
    read_jobs,
    read_users,
)

COLUMNS = [
    "timestamp", "user_id", "item_id", "event_type", "touchpoint", "scene", "value", "recommendation_id",
    "title", "category", "brand", "price", "in_stock", "tags", "city", "job_id", "technician_id",
    "created_at", "status", "duration_minutes", "rating", "complaint", "verified", "on_time",
]  # fmt: skip
CELL = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", "1790000000", "2026-10-01T08:00:00Z", "view", "order", "i1", "u1", "nan", "-1", "1e999"]
    ),
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.floats().map(str),
)
ROWS = st.lists(st.dictionaries(st.sampled_from(COLUMNS), CELL, max_size=len(COLUMNS)), max_size=12)
READERS: dict[str, Callable[[Path], tuple[pd.DataFrame, ReadReport]]] = {
    "events": lambda path: read_events(path, DEFAULT_EVENT_WEIGHTS, {"i1", "i2"}),
    "items": read_items,
    "users": read_users,
    "jobs": read_jobs,
}


def write(rows: list[dict[str, str]], fmt: str, path: Path, junk: bytes) -> Path:
    frame = pd.DataFrame(rows)
    if fmt == "csv":
        frame.to_csv(path, index=False)
        with path.open("ab") as f:
            f.write(junk)
    elif fmt == "jsonl.gz":
        with gzip.open(path, "wt") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
            f.write(junk.decode("latin-1"))
    elif fmt == "jsonl":
        with path.open("wb") as f:
            for row in rows:
                f.write((json.dumps(row) + "\n").encode())
            f.write(junk)
    else:
        frame.to_parquet(path) if rows else path.write_bytes(junk)
    return path


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    rows=ROWS,
    fmt=st.sampled_from(["csv", "jsonl", "jsonl.gz", "parquet"]),
    reader=st.sampled_from(sorted(READERS)),
    junk=st.binary(max_size=40),
)
def test_readers_refuse_or_account_for_every_row(rows, fmt: str, reader: str, junk: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write(rows, fmt, Path(tmp) / f"{reader}.{fmt}", junk)
        try:
            frame, report = READERS[reader](path)
        except DataError as error:
            assert str(path) in str(error)  # says which file
            return
        assert report.rows_kept == len(frame)  # nothing dropped without being counted
        assert report.rows_read >= len(rows) or fmt == "csv"


PARTITION = st.tuples(ROWS, st.sampled_from(["csv", "jsonl", "jsonl.gz", "parquet"]), st.binary(max_size=40))


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(partitions=st.lists(PARTITION, min_size=1, max_size=3), use_glob=st.booleans())
def test_a_folder_or_glob_of_partitions_is_refused_or_read_whole(
    partitions: list[tuple[list[dict[str, str]], str, bytes]], use_glob: bool
) -> None:
    """Partitions of mixed formats, as a log folder holds them: the first bad file is named, or every
    row of every file is accounted for."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "events"
        folder.mkdir()
        for n, (rows, fmt, junk) in enumerate(partitions):
            write(rows, fmt, folder / f"part-{n}.{fmt}", junk)
        try:
            frame, report = read_events(
                Path(f"{folder}/part-*") if use_glob else folder, DEFAULT_EVENT_WEIGHTS, {"i1", "i2"}
            )
        except DataError as error:
            assert str(folder) in str(error)
            return
        assert report.rows_kept == len(frame)
        assert report.rows_read >= sum(len(rows) for rows, fmt, _ in partitions if fmt != "csv")
