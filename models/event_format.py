"""The event log's format, in one place for the service that writes it (service/event_log.py) and the
training that reads it (training/readers.py, training/event_store.py).

A log is a folder of daily partitions, `DIR/YYYY-MM-DD/events-wN.jsonl`: the day of the event in UTC,
and the writer slot (one per server process) that appended it. Each line is one JSON object with the
fields of LINE_FIELDS, in that order: `timestamp` ISO 8601 in UTC to the millisecond, `value` a number
or "" when the event has none, every other field text. Training reads EVENT_COLUMNS (`event_id` only
serves the service's retries), and reads CSV and Parquet logs with the same columns as well.

Beside each day's events, `DIR/YYYY-MM-DD/exposures-wN.jsonl` holds the exposures: one line per answer
given inside an experiment (EXPOSURE_FIELDS), which the experiment analysis joins to the events by
`recommendation_id`. Training's event readers leave them out (`is_exposures`).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

EVENT_TYPES = ("impression", "view", "click", "cart", "order")
SESSION_TYPES = frozenset({"view", "click", "cart", "order"})  # what a session is made of
EVENT_COLUMNS = (
    "timestamp",
    "user_id",
    "item_id",
    "event_type",
    "touchpoint",
    "scene",
    "value",
    "recommendation_id",
)
LINE_FIELDS = ("event_id", *EVENT_COLUMNS)
# An exposure's line: `timestamp` as an event's, `item_ids` a JSON list of the items shown in order,
# every other field text.
EXPOSURE_FIELDS = (
    "recommendation_id",
    "timestamp",
    "user_id",
    "touchpoint",
    "experiment",
    "arm",
    "model_version",
    "item_ids",
)
EVENTS, EXPOSURES = "events", "exposures"  # the two kinds of file of a day's partition


@dataclass(frozen=True)
class Event:
    event_id: str
    timestamp: float  # Unix seconds
    user_id: str
    item_id: str
    event_type: str
    touchpoint: str = ""
    scene: str = ""
    value: float | None = None
    recommendation_id: str = ""

    def day(self) -> str:
        """The partition the event goes to: its day in UTC."""
        return _day(int(self.timestamp // 86400))

    def line(self) -> str:
        """Its line of the log. Written by hand rather than by json.dumps: this is most of the intake's
        work, and a fixed set of fields needs no generality."""
        value = '""' if self.value is None else repr(float(self.value))
        return (
            f'{{"event_id":{_quote(self.event_id)},"timestamp":"{_stamp(self.timestamp)}","user_id":{_quote(self.user_id)},'
            f'"item_id":{_quote(self.item_id)},"event_type":{_quote(self.event_type)},'
            f'"touchpoint":{_quote(self.touchpoint)},"scene":{_quote(self.scene)},"value":{value},'
            f'"recommendation_id":{_quote(self.recommendation_id)}}}\n'
        )


@dataclass(frozen=True)
class Exposure:
    """One answer given inside an experiment: who saw which items, from which arm."""

    recommendation_id: str
    timestamp: float  # Unix seconds
    user_id: str
    touchpoint: str
    experiment: str
    arm: str
    model_version: str
    item_ids: tuple[str, ...]

    def day(self) -> str:
        return _day(int(self.timestamp // 86400))

    def line(self) -> str:
        """Its line of the day's exposures file, fields in EXPOSURE_FIELDS' order."""
        record = {name: getattr(self, name) for name in EXPOSURE_FIELDS}
        record["timestamp"] = _stamp(self.timestamp)
        record["item_ids"] = list(self.item_ids)
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def parse_exposure(line: str) -> Exposure | None:
    """An exposure back from its line; None for a line that is not one (every field is required)."""
    try:
        record = json.loads(line)
        items = record["item_ids"]
        if not isinstance(items, list):
            return None
        text = {name: str(record[name]) for name in EXPOSURE_FIELDS if name not in ("timestamp", "item_ids")}
        stamp = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
        return Exposure(timestamp=stamp, item_ids=tuple(str(item) for item in items), **text)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def partition(directory: Path, day: str, writer: str, kind: str = EVENTS) -> Path:
    """The file of one writer slot (`w0`, `w1`, ...) for one day (`YYYY-MM-DD`) of the log in
    `directory`: its events, or its exposures."""
    return directory / day / f"{kind}-{writer}.jsonl"


def partitions(directory: Path, writer: str, kind: str = EVENTS) -> list[Path]:
    """Every day's file of one writer slot, in day order."""
    return sorted(directory.glob(f"*/{kind}-{writer}.jsonl"))


def is_exposures(path: Path) -> bool:
    """Whether a file of the log holds exposures rather than events."""
    return path.name.startswith(f"{EXPOSURES}-")


def parse(line: str) -> Event | None:
    """An event back from its line; None for a line that is not one (the id, time, user, item and type
    are required)."""
    try:
        record = json.loads(line)
        stamp = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
        value = record.get("value", "")
        return Event(
            event_id=str(record["event_id"]),
            timestamp=stamp,
            user_id=str(record["user_id"]),
            item_id=str(record["item_id"]),
            event_type=str(record["event_type"]),
            touchpoint=str(record.get("touchpoint", "")),
            scene=str(record.get("scene", "")),
            value=None if value in ("", None) or not math.isfinite(float(value)) else float(value),
            recommendation_id=str(record.get("recommendation_id", "")),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


_quote = json.encoder.encode_basestring


def _stamp(timestamp: float) -> str:
    """ISO 8601 in UTC to the millisecond."""
    whole = math.floor(timestamp)
    return f"{_second(whole)}.{min(int((timestamp - whole) * 1000), 999):03d}Z"


@functools.lru_cache(maxsize=64)
def _day(days: int) -> str:
    return datetime.fromtimestamp(days * 86400, UTC).strftime("%Y-%m-%d")


@functools.lru_cache(maxsize=4096)
def _second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
