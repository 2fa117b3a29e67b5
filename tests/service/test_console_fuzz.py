"""Hypothesis: whatever lines an event log or an exposures file holds (cut off, not JSON, wrong types),
the console's tables are built, counting only the valid lines: a page never fails on a bad line."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from service.console import data
from tests.support.console_world import write_log

JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
)
RECORDS = st.dictionaries(
    st.sampled_from(
        [
            "event_id",
            "timestamp",
            "user_id",
            "item_id",
            "event_type",
            "recommendation_id",
            "experiment",
            "arm",
            "value",
            "touchpoint",
            "item_ids",
        ]
    ),
    JSON_VALUES,
).map(json.dumps)
LINES = st.lists(st.one_of(RECORDS, st.text(max_size=40).filter(lambda t: "\n" not in t)), max_size=12)


@settings(max_examples=40, deadline=None)
@given(events=LINES, exposures=LINES)
def test_bad_lines_in_the_log_leave_the_valid_ones_counted(events: list[str], exposures: list[str]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        written = write_log(root, [f"i{k}" for k in range(20)], users=4)
        day = sorted(p for p in root.iterdir() if p.is_dir())[0]
        (day / "events-w0.jsonl").write_text("".join(line + "\n" for line in events))
        (day / "exposures-w0.jsonl").write_text("".join(line + "\n" for line in exposures))
        db = data.open_log(root)
        try:
            counted = db.execute("SELECT count(*) FROM log").fetchone()
            assert counted is not None and counted[0] >= written
            data.user_arms(db)
            data.slot_counts(db, "touchpoint")
            data.events_per_minute(db)
        finally:
            db.close()
