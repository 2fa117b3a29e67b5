"""Reading event logs, catalogs and user tables (CSV, JSON Lines or Parquet), validated.

One reader serves every format: the file's suffix picks the parser, and the same column rules apply to
all three. A row that breaks a rule is dropped and counted under its reason, with the first examples
kept, so that nothing is lost without a trace.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from models.event_format import is_exposures

# Of each of the log's types (models/event_format.py EVENT_TYPES).
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "impression": 0.0,
    "view": 1.0,
    "click": 2.0,
    "cart": 4.0,
    "order": 8.0,
}
EXAMPLES_KEPT = 3


class DataError(Exception):
    """The file cannot be read at all (unknown format, missing required column, unreadable)."""


@dataclass
class ReadReport:
    """What a reader read, kept and dropped, and why."""

    source: str
    rows_read: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    raw: pd.DataFrame | None = None  # the rows as read (text), so examples show the input, not a parse

    @property
    def rows_kept(self) -> int:
        return self.rows_read - sum(self.dropped.values())

    def drop(self, reason: str, rows: pd.DataFrame | list[str], count: int | None = None) -> None:
        """`rows` dropped for `reason` (or their first examples, of `count` in all)."""
        count = len(rows) if count is None else count
        if not count:
            return
        self.dropped[reason] += count
        if isinstance(rows, pd.DataFrame):
            shown = rows.head(EXAMPLES_KEPT)
            if self.raw is not None and shown.index.isin(self.raw.index).all():
                shown = self.raw.loc[shown.index]
            samples = [f"record {int(i) + 1}: {_as_line(row)}" for i, row in shown.iterrows()]
        else:
            samples = list(rows[:EXAMPLES_KEPT])
        self.examples.setdefault(reason, []).extend(
            samples[: EXAMPLES_KEPT - len(self.examples.get(reason, []))]
        )

    def finished(self) -> ReadReport:
        """The report once reading is done: the rows as read are not kept (a large log is not held twice)."""
        self.raw = None
        return self

    def summary(self) -> str:
        lines = [f"{self.source}: read {self.rows_read}, kept {self.rows_kept}"]
        for reason, count in sorted(self.dropped.items()):
            lines.append(f"  dropped {count} {reason}; e.g. {'; '.join(self.examples.get(reason, []))}")
        return "\n".join(lines)


def _as_line(row: pd.Series) -> str:
    """A row's fields as one line of CSV text, as a person would see it in the file."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(str(v) for v in row.tolist())
    return buffer.getvalue()[:200]


TABLE_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json", ".parquet")


def input_files(path: Path) -> list[Path]:
    """The files a path names: itself, every table file under a folder (e.g. the daily partitions the
    service writes), or the matches of a glob pattern; in name order."""
    if path.is_dir():
        found = [
            p
            for p in path.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
            and p.name.lower().removesuffix(".gz").endswith(TABLE_SUFFIXES)
            and not is_exposures(p)  # the experiments' exposures beside the events
        ]
    elif any(ch in str(path) for ch in "*?["):
        anchor = Path(path.anchor) if path.is_absolute() else Path()
        found = [p for p in anchor.glob(str(path.relative_to(anchor))) if p.is_file()]
    else:
        return [path]
    if not found:
        raise DataError(f"{path}: no table files (.csv, .jsonl, .parquet, optionally .gz) found")
    return sorted(found)


def read_table(path: Path, report: ReadReport) -> pd.DataFrame:
    """All columns as strings ("" when empty), whatever the format; a folder or glob pattern is read as
    the union of its files."""
    files = input_files(path)
    if len(files) == 1:
        return _read_one(files[0], report)
    frames, raw = [], []
    for file in files:
        frames.append(_read_one(file, report))
        raw.append(report.raw)
    report.raw = pd.concat(raw, ignore_index=True)
    return pd.concat(frames, ignore_index=True).fillna("")


def _read_one(path: Path, report: ReadReport) -> pd.DataFrame:
    name = path.name.lower().removesuffix(".gz")
    try:
        if name.endswith(".csv"):
            bad: list[str] = []

            def keep_bad(line: list[str]) -> None:
                bad.append(",".join(line))  # returning None drops the line from the frame

            frame = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                engine="python",
                on_bad_lines=keep_bad,
                quoting=csv.QUOTE_MINIMAL,
            )
            report.rows_read += len(bad)
            report.drop("malformed_line", [f"wrong number of fields: {line[:120]}" for line in bad])
        elif name.endswith((".jsonl", ".ndjson", ".json")):
            frame = _read_json_lines(path, report)
        elif name.endswith(".parquet"):
            frame = pd.read_parquet(path)
        else:
            raise DataError(f"{path}: unknown format (use .csv, .jsonl or .parquet, optionally .gz for text)")
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise DataError(f"{path}: {error}") from error
    report.rows_read += len(frame)
    text = frame.apply(_as_text).reset_index(drop=True)
    report.raw = text.copy(deep=False)  # readers add columns to theirs; the examples keep the input's
    return text


def _read_json_lines(path: Path, report: ReadReport) -> pd.DataFrame:
    records, bad = [], []
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            else:
                bad.append(f"line {number}: not a JSON object: {line.strip()[:120]}")
    report.rows_read += len(bad)
    report.drop("malformed_line", bad)
    return pd.DataFrame.from_records(records)


def _as_text(column: pd.Series) -> pd.Series:
    text = column.astype(object).where(column.notna(), "")
    # JSON and Parquet give numbers; 1.0 for an id or a timestamp means "1".
    return text.map(
        lambda v: format(v, "g") if isinstance(v, float) and float(v).is_integer() else str(v)
    ).str.strip()


def _require(frame: pd.DataFrame, path: Path, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing required column(s) {', '.join(missing)}; has {', '.join(frame.columns)}"
        )


def _keep(frame: pd.DataFrame, ok: pd.Series, reason: str, report: ReadReport) -> pd.DataFrame:
    report.drop(reason, frame[~ok])
    return frame[ok]


def parse_timestamps(text: pd.Series) -> pd.Series:
    """Unix seconds (float) from ISO 8601 or Unix-seconds text; NaN where neither."""
    numeric = pd.to_numeric(text, errors="coerce")
    iso = pd.to_datetime(text.where(numeric.isna()), utc=True, format="ISO8601", errors="coerce")
    iso_seconds = (iso - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return numeric.where(numeric.notna(), iso_seconds).astype(float)


def read_items(path: Path) -> tuple[pd.DataFrame, ReadReport]:
    """Columns: item_id, title, category, brand, price (float, NaN unknown), in_stock (bool), tags (list)."""
    report = ReadReport(str(path))
    frame = read_table(path, report)
    _require(frame, path, ["item_id", "title", "category"])
    for optional in ("brand", "price", "in_stock", "tags"):
        if optional not in frame.columns:
            frame[optional] = ""
    frame = _keep(frame, frame["item_id"] != "", "missing_item_id", report)
    frame = _keep(frame, frame["category"] != "", "missing_category", report)
    price = pd.to_numeric(frame["price"].where(frame["price"] != ""), errors="coerce")
    frame = _keep(frame, (frame["price"] == "") | (price.notna() & (price >= 0)), "malformed_price", report)
    stock = frame["in_stock"].str.lower().map(_BOOLEANS)
    frame = _keep(frame, stock.notna(), "malformed_in_stock", report)
    frame = _keep(frame, ~frame.duplicated("item_id", keep="last"), "duplicate_item_id", report)
    frame = frame.assign(
        price=pd.to_numeric(frame["price"].where(frame["price"] != ""), errors="coerce").astype(float),
        in_stock=frame["in_stock"].str.lower().map(_BOOLEANS).astype(bool),
        tags=frame["tags"].map(lambda t: [x.strip() for x in t.split("|") if x.strip()]),
    )
    return frame.reset_index(drop=True), report.finished()


_BOOLEANS = {"": True, "true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def read_users(path: Path) -> tuple[pd.DataFrame, ReadReport]:
    """Column user_id plus any attribute columns, all text."""
    report = ReadReport(str(path))
    frame = read_table(path, report)
    _require(frame, path, ["user_id"])
    frame = _keep(frame, frame["user_id"] != "", "missing_user_id", report)
    frame = _keep(frame, ~frame.duplicated("user_id", keep="last"), "duplicate_user_id", report)
    return frame.reset_index(drop=True), report.finished()


JOB_TIMES = ["created_at", "accepted_at", "completed_at", "time_window_start", "time_window_end"]


def _flags(text: pd.Series, default: bool) -> pd.Series:
    """Booleans from true/false/1/0/yes/no text (empty: `default`); NaN where unreadable."""
    return text.str.lower().map({**_BOOLEANS, "": default})


def read_jobs(path: Path) -> tuple[pd.DataFrame, ReadReport]:
    """One row per job. Times become Unix seconds (NaN when empty), `verified` and `complaint` booleans,
    `rating` a float in 1-5 (NaN when empty). A job never taken has an empty technician_id."""
    report = ReadReport(str(path))
    frame = read_table(path, report)
    _require(
        frame, path, ["job_id", "technician_id", "city", "category", "created_at", "completed_at", "verified"]
    )
    for optional in (
        "required_skills",
        "accepted_at",
        "time_window_start",
        "time_window_end",
        "rating",
        "complaint",
    ):
        if optional not in frame.columns:
            frame[optional] = ""
    frame = _keep(frame, frame["job_id"] != "", "missing_job_id", report)
    frame = _keep(frame, frame["created_at"] != "", "missing_created_at", report)
    times = {c: parse_timestamps(frame[c].where(frame[c] != "")) for c in JOB_TIMES}
    readable = pd.Series(True, index=frame.index)
    for column, parsed in times.items():
        readable &= (frame[column] == "") | parsed.notna()
    frame = _keep(frame, readable, "malformed_timestamp", report)
    times = {c: t[frame.index] for c, t in times.items()}
    ordered = ~(times["accepted_at"] < times["created_at"]) & ~(times["completed_at"] < times["accepted_at"])
    ordered &= ~(times["time_window_end"] < times["time_window_start"])
    ordered &= (frame["technician_id"] != "") | times["completed_at"].isna()
    frame = _keep(frame, ordered, "inconsistent_lifecycle", report)
    rating = pd.to_numeric(frame["rating"].where(frame["rating"] != ""), errors="coerce")
    frame = _keep(frame, (frame["rating"] == "") | rating.between(1, 5), "malformed_rating", report)
    verified, complaint = _flags(frame["verified"], False), _flags(frame["complaint"], False)
    frame = _keep(frame, verified.notna() & complaint.notna(), "malformed_flag", report)
    frame = _keep(frame, ~frame.duplicated("job_id", keep="last"), "duplicate_job_id", report)
    return (
        frame.assign(
            **{c: times[c][frame.index] for c in JOB_TIMES},
            verified=_flags(frame["verified"], False).astype(bool),
            complaint=_flags(frame["complaint"], False).astype(bool),
            rating=pd.to_numeric(frame["rating"].where(frame["rating"] != ""), errors="coerce").astype(float),
        ).reset_index(drop=True),
        report.finished(),
    )
