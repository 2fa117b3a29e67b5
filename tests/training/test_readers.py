"""Event, catalog and user readers: one set of rules for CSV, JSON Lines and Parquet; none lost silently."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from training.event_store import read_events
from training.readers import DEFAULT_EVENT_WEIGHTS, DataError, input_files, read_items, read_jobs, read_users

EVENTS = [
    {
        "timestamp": "2026-10-01T08:00:00Z",
        "user_id": "u1",
        "item_id": "i1",
        "event_type": "view",
        "scene": "browse",
    },
    {"timestamp": "1790000000", "user_id": "u1", "item_id": "i2", "event_type": "ORDER", "value": "99.5"},
    {"timestamp": "2026-10-01T09:00:00+08:00", "user_id": "u2", "item_id": "i1", "event_type": "click"},
    {"timestamp": "yesterday", "user_id": "u2", "item_id": "i1", "event_type": "click"},
    {"timestamp": "1790000001", "user_id": "", "item_id": "i1", "event_type": "click"},
    {"timestamp": "1790000002", "user_id": "u3", "item_id": "i9", "event_type": "view"},
    {"timestamp": "1790000003", "user_id": "u3", "item_id": "i1", "event_type": "teleport"},
    {"timestamp": "1790000004", "user_id": "u3", "item_id": "i1", "event_type": "order", "value": "lots"},
    {
        "timestamp": "2026-10-01T08:00:00Z",
        "user_id": "u1",
        "item_id": "i1",
        "event_type": "view",
        "scene": "browse",
    },
]
EXPECTED_DROPS = {
    "malformed_timestamp": 1,
    "missing_user_id": 1,
    "unknown_item": 1,
    "unknown_event_type": 1,
    "malformed_value": 1,
    "duplicate": 1,
}


def write(rows: list[dict], path: Path) -> Path:
    frame = pd.DataFrame(rows).fillna("")
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({k: v for k, v in r.items()}) + "\n" for r in rows))
    else:
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_every_format_reads_the_same_events_and_reports_each_drop(tmp_path: Path, suffix: str) -> None:
    events, report = read_events(
        write(EVENTS, tmp_path / f"events{suffix}"), DEFAULT_EVENT_WEIGHTS, {"i1", "i2"}
    )
    assert report.rows_read == len(EVENTS)
    assert dict(report.dropped) == EXPECTED_DROPS
    assert report.rows_kept == len(events) == 3
    assert all(report.examples[reason] for reason in EXPECTED_DROPS)
    by_item = events.set_index(["user_id", "item_id"])
    assert by_item.loc[("u1", "i1"), "timestamp"] == pd.Timestamp("2026-10-01T08:00:00Z").timestamp()
    assert by_item.loc[("u2", "i1"), "timestamp"] == pd.Timestamp("2026-10-01T01:00:00Z").timestamp()
    assert by_item.loc[("u1", "i2"), "event_type"] == "order"
    assert by_item.loc[("u1", "i2"), "value"] == 99.5


def test_custom_event_types_are_kept_when_they_have_a_weight(tmp_path: Path) -> None:
    path = write(EVENTS, tmp_path / "events.csv")
    events, report = read_events(path, {**DEFAULT_EVENT_WEIGHTS, "teleport": 3.0}, {"i1", "i2"})
    assert "unknown_event_type" not in report.dropped
    assert "teleport" in set(events["event_type"])


def test_csv_lines_with_the_wrong_number_of_fields_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "timestamp,user_id,item_id,event_type\n1790000000,u1,i1,view\n1790000001,u1,i1,view,extra,junk\n"
    )
    events, report = read_events(path, DEFAULT_EVENT_WEIGHTS)
    assert len(events) == 1 and report.rows_read == 2 and report.dropped["malformed_line"] == 1


def test_missing_required_column_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write([{"timestamp": "1", "user_id": "u", "item_id": "i"}], tmp_path / "events.csv")
    with pytest.raises(DataError, match="event_type"):
        read_events(path, DEFAULT_EVENT_WEIGHTS)


def test_unknown_format_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "events.xlsx"
    path.write_text("x")
    with pytest.raises(DataError, match="unknown format"):
        read_events(path, DEFAULT_EVENT_WEIGHTS)


def test_items_are_typed_and_bad_rows_reported(tmp_path: Path) -> None:
    rows = [
        {
            "item_id": "i1",
            "title": "Sofa",
            "category": "sofa",
            "price": "1999",
            "in_stock": "true",
            "tags": "a|b",
        },
        {"item_id": "i2", "title": "Lamp", "category": "lamp", "price": "", "in_stock": "0", "tags": ""},
        {"item_id": "i3", "title": "Bad", "category": "lamp", "price": "cheap", "in_stock": "1", "tags": ""},
        {"item_id": "i4", "title": "Bad", "category": "lamp", "price": "5", "in_stock": "maybe", "tags": ""},
        {"item_id": "i5", "title": "NoCat", "category": "", "price": "5", "in_stock": "1", "tags": ""},
        {
            "item_id": "i1",
            "title": "Sofa v2",
            "category": "sofa",
            "price": "1899",
            "in_stock": "yes",
            "tags": "",
        },
    ]
    items, report = read_items(write(rows, tmp_path / "items.csv"))
    assert dict(report.dropped) == {
        "malformed_price": 1,
        "malformed_in_stock": 1,
        "missing_category": 1,
        "duplicate_item_id": 1,
    }
    by_id = items.set_index("item_id")
    assert by_id.loc["i1", "title"] == "Sofa v2" and by_id.loc["i1", "price"] == 1899.0
    assert pd.isna(by_id.loc["i2", "price"]) and not by_id.loc["i2", "in_stock"]
    assert list(items.columns[:3]) == ["item_id", "title", "category"]


def test_users_keep_their_attribute_columns(tmp_path: Path) -> None:
    rows = [{"user_id": "u1", "city": "shanghai"}, {"user_id": "", "city": "beijing"}]
    users, report = read_users(write(rows, tmp_path / "users.jsonl"))
    assert users.to_dict("records") == [{"user_id": "u1", "city": "shanghai"}]
    assert report.dropped == {"missing_user_id": 1}


def test_json_lines_that_are_not_objects_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    good = json.dumps({"timestamp": 1790000000, "user_id": "u1", "item_id": "i1", "event_type": "view"})
    path.write_text(f"{good}\n{{not json\n[1, 2]\n")
    events, report = read_events(path, DEFAULT_EVENT_WEIGHTS)
    assert len(events) == 1 and report.rows_read == 3 and report.dropped["malformed_line"] == 2
    assert events.loc[0, "timestamp"] == 1790000000.0


def test_job_log_is_typed_and_inconsistent_lifecycles_are_reported(tmp_path: Path) -> None:
    base = {
        "technician_id": "t1", "city": "shanghai", "category": "repair", "created_at": "2026-08-01T08:00:00Z",
        "accepted_at": "2026-08-01T08:10:00Z", "completed_at": "2026-08-01T12:00:00Z",
        "time_window_start": "2026-08-01T10:00:00Z", "time_window_end": "2026-08-01T12:00:00Z",
        "verified": "true", "rating": "5", "complaint": "",
    }  # fmt: skip
    rows = [
        {**base, "job_id": "ok"},
        {**base, "job_id": "never-taken", "technician_id": "", "accepted_at": "", "completed_at": ""},
        {**base, "job_id": "done-before-accepted", "completed_at": "2026-08-01T08:05:00Z"},
        {**base, "job_id": "done-by-nobody", "technician_id": ""},
        {**base, "job_id": "bad-rating", "rating": "6"},
        {**base, "job_id": "bad-flag", "verified": "perhaps"},
        {**base, "job_id": "bad-time", "created_at": "soon"},
        {**base, "job_id": ""},
    ]
    jobs, report = read_jobs(write(rows, tmp_path / "jobs.csv"))
    assert dict(report.dropped) == {
        "inconsistent_lifecycle": 2,
        "malformed_rating": 1,
        "malformed_flag": 1,
        "malformed_timestamp": 1,
        "missing_job_id": 1,
    }
    by_id = jobs.set_index("job_id")
    assert by_id.loc["ok", "verified"] and not by_id.loc["ok", "complaint"] and by_id.loc["ok", "rating"] == 5
    assert pd.isna(by_id.loc["never-taken", "completed_at"])
    assert by_id.loc["ok", "completed_at"] - by_id.loc["ok", "created_at"] == 4 * 3600


def test_dropped_rows_are_shown_as_they_were_written_and_missing_fields_named(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "timestamp,user_id,item_id,event_type\n"
        "2026-10-01T08:00:00Z,u1,i1,view\n"
        "2026-10-01T09:00:00Z,u1,i1,teleport\n"
        "2026-10-01T10:00:00Z,u2,i1\n"  # a row that stops short: a malformed line
        "2026-10-01T11:00:00Z,u2,,view\n"
    )
    _, report = read_events(path, DEFAULT_EVENT_WEIGHTS)
    assert report.dropped == {"unknown_event_type": 1, "missing_item_id": 1, "malformed_line": 1}
    assert report.examples["unknown_event_type"] == ["record 2: 2026-10-01T09:00:00Z,u1,i1,teleport"]
    assert report.examples["missing_item_id"] == ["record 3: 2026-10-01T11:00:00Z,u2,,view"]
    assert report.examples["malformed_line"] == ["wrong number of fields: 2026-10-01T10:00:00Z,u2,i1"]
    assert report.raw is None  # not kept once read


def test_a_folder_of_partitions_is_read_without_the_exposures_beside_the_events(tmp_path: Path) -> None:
    day = tmp_path / "2026-12-01"
    day.mkdir()
    (day / "events-w0.jsonl").write_text("{}\n")
    (day / "exposures-w0.jsonl").write_text("{}\n")
    assert [p.name for p in input_files(tmp_path)] == ["events-w0.jsonl"]
