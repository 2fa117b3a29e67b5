"""The event log on its own: daily partitions in the event-log format, retries not written twice, and
the state after a crash at each point of a write."""

from __future__ import annotations

import json
import time
from pathlib import Path

from models.event_format import Event
from service.event_log import EventLog
from training.event_store import read_events

NOW = time.time()
WEIGHTS = {"impression": 0.0, "view": 1.0, "click": 2.0, "cart": 4.0, "order": 8.0}


def event(n: int, user: str = "u1", kind: str = "view", at: float = NOW) -> Event:
    return Event(
        f"e{n}", at, user, f"i{n % 7}", kind, "home_feed", "browse", 99.0 if kind == "order" else None
    )


def open_log(tmp_path: Path) -> EventLog:
    return EventLog(tmp_path / "events", tmp_path / "state.db")


def test_events_land_in_daily_partitions_that_training_reads(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    yesterday = NOW - 86400
    assert log.record([event(1), event(2, kind="order"), event(3, at=yesterday)]) == (3, 0)
    log.close()
    days = sorted(p.parent.name for p in (tmp_path / "events").glob("*/*.jsonl"))
    assert len(days) == 2
    frame, report = read_events(tmp_path / "events", WEIGHTS)
    assert len(frame) == 3 and report.rows_kept == 3
    assert frame.loc[frame["event_type"] == "order", "value"].tolist() == [99.0]


def test_a_retried_batch_is_not_written_twice_even_by_another_process(tmp_path: Path) -> None:
    first = open_log(tmp_path)
    assert first.record([event(1), event(2)]) == (2, 0)
    second = open_log(tmp_path)  # another process: its own writer slot, the same ids
    assert second.writer != first.writer
    assert second.record([event(2), event(3), event(3)]) == (1, 2)
    first.close()
    second.close()
    frame, _ = read_events(tmp_path / "events", WEIGHTS)
    assert len(frame) == 3


def test_lines_fsynced_before_a_crash_count_as_recorded_and_a_half_line_is_cut(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.record([event(1)])
    path = next((tmp_path / "events").glob("*/events-w0.jsonl"))
    log.close()
    # The crash: a batch written and fsynced but never indexed, then half a line of the next one.
    path.write_bytes(path.read_bytes() + event(2).line().encode() + event(3).line().encode()[:20])
    again = open_log(tmp_path)
    assert again.writer == "w0"
    assert path.read_bytes().endswith(b"\n")
    assert again.record([event(2), event(3)]) == (1, 1)  # 2 is on disk already; 3 was never written
    again.close()
    lines = [json.loads(line)["event_id"] for line in path.read_text().splitlines()]
    assert sorted(lines) == ["e1", "e2", "e3"]


def test_a_users_last_day_of_events_is_their_session(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.record(
        [
            event(1, at=NOW - 3 * 86400),  # too old
            event(2, at=NOW - 600),
            event(3, at=NOW - 60),
            event(4, kind="impression", at=NOW - 30),  # shown, not seen: no session
            event(5, user="u2", at=NOW - 60),
        ]
    )
    assert open_log(tmp_path).session("u1", NOW) == ("i3", "i2")
    assert log.session("nobody", NOW) == ()


def test_a_restart_with_fewer_processes_still_counts_what_a_crashed_slot_fsynced(tmp_path: Path) -> None:
    """Measured before: two workers killed mid-intake, one started again: a batch the second worker had
    fsynced but not indexed was written a second time on the client's retry."""
    first, second = open_log(tmp_path), open_log(tmp_path)
    assert second.writer == "w1"
    second.record([event(1)])
    path = next((tmp_path / "events").glob("*/events-w1.jsonl"))
    path.write_bytes(path.read_bytes() + event(2).line().encode())  # fsynced, then the crash
    first.close()
    second.close()
    alone = open_log(tmp_path)  # one process comes back, in slot w0
    assert alone.writer == "w0"
    assert alone.record([event(1), event(2), event(3)]) == (1, 2)
