"""What a console page is made of: sections, each a heading, a sentence, an optional chart (inline
SVG) and an optional table, rendered by templates/page.html."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Section:
    heading: str
    text: str = ""
    charts: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    warning: bool = False


@dataclass(frozen=True)
class Page:
    path: str
    title: str
    sections: tuple[Section, ...]
    built_at: float = 0.0
    sources: tuple[str, ...] = field(default_factory=tuple)


def cell(value: object) -> str:
    """A table cell: rates to 4 significant digits, counts with separators, missing as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, pd.Timestamp):  # a day as a date, a minute as a time
        return value.strftime("%Y-%m-%d" if value == value.normalize() else "%Y-%m-%d %H:%M")
    return str(value)


def table(frame: pd.DataFrame, columns: Sequence[str] | None = None, limit: int = 50) -> Table:
    """The first `limit` rows of `frame` (its `columns`, all by default) as text cells."""
    shown = frame[list(columns)] if columns is not None else frame
    rows = tuple(
        tuple(cell(v.item() if hasattr(v, "item") else v) for v in row)
        for row in shown.head(limit).itertuples(index=False)
    )
    return Table(tuple(str(c).replace("_", " ") for c in shown.columns), rows)


def interval(value: float | None, low: float | None, high: float | None) -> str:
    return f"{cell(value)} [{cell(low)}, {cell(high)}]"
