"""The event log's format: what the service writes is what comes back from a line, where the layout
says it goes."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from models import event_format
from models.event_format import LINE_FIELDS, Event


def test_a_line_holds_every_field_and_parses_back_to_its_event() -> None:
    event = Event("e1", 1_800_000_000.25, 'u"1', "i1", "order", "home_feed", "browse", 12.5, "r1")
    line = event.line()
    assert line.endswith("\n") and tuple(json.loads(line)) == LINE_FIELDS
    assert json.loads(line)["timestamp"] == "2027-01-15T08:00:00.250Z"
    assert event_format.parse(line) == event
    assert event_format.parse(Event("e2", 1_800_000_000.0, "u", "i", "view").line()) == Event(
        "e2", 1_800_000_000.0, "u", "i", "view"
    )


def test_a_line_that_is_not_an_event_parses_to_none() -> None:
    good = json.loads(Event("e1", 1_800_000_000.0, "u", "i", "view").line())
    for line in (
        "not json",
        json.dumps({"event_id": "e1"}),
        json.dumps({**good, "timestamp": "yesterday"}),
        json.dumps({**good, "value": "abc"}),
    ):
        assert event_format.parse(line) is None


def test_each_writer_has_a_file_a_day(tmp_path: Path) -> None:
    event = Event("e1", 1_800_000_000.0, "u", "i", "view")
    path = event_format.partition(tmp_path, event.day(), "w1")
    assert path == tmp_path / "2027-01-15" / "events-w1.jsonl"
    path.parent.mkdir()
    path.write_text(event.line())
    event_format.partition(tmp_path, "2027-01-14", "w0").parent.mkdir()
    event_format.partition(tmp_path, "2027-01-14", "w0").write_text("")
    assert event_format.partitions(tmp_path, "w1") == [path]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=9),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200) | _JSON.map(json.dumps))
def test_any_line_parses_to_an_event_or_exposure_or_none_never_an_error(line: str) -> None:
    """What a crash or a hand edit may leave in a log: the readers take it or skip it."""
    for parsed in (event_format.parse(line), event_format.parse_exposure(line)):
        assert parsed is None or parsed.line().endswith("\n")
