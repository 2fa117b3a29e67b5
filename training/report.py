"""Human reports: charts drawn with matplotlib, saved as PNG and put together in one HTML page."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from models import versions

DAY_SECONDS = 86400.0

SEGMENT_COLOURS = {
    "core": "#1b9e77",
    "high_efficiency_low_attendance": "#7570b3",
    "high_attendance_low_efficiency": "#d95f02",
    "developing": "#999999",
}


class Page:
    """An HTML page built section by section; charts are saved as PNG files beside it and embedded."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = []
        self.charts: dict[str, bytes] = {}

    def text(self, paragraph: str) -> None:
        self.parts.append(f"<p>{html.escape(paragraph)}</p>")

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def chart(
        self, name: str, draw: Callable[[plt.Figure], None], size: tuple[float, float] = (9, 5.5)
    ) -> None:
        figure = plt.figure(figsize=size, dpi=100)
        try:
            draw(figure)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", bbox_inches="tight")
        finally:
            plt.close(figure)
        self.charts[name] = buffer.getvalue()
        encoded = base64.b64encode(self.charts[name]).decode()
        self.parts.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{encoded}">')

    def table(self, frame: pd.DataFrame) -> None:
        """A table that fits the page: headers wrap at their words, and a table wider than the page
        scrolls inside its own box instead of pushing the page wider."""
        readable = frame.rename(columns=lambda name: str(name).replace("_", " "))
        rendered = readable.to_html(
            index=False, float_format=lambda v: f"{v:.2f}", na_rep="", border=0, justify="left"
        )
        self.parts.append(f'<div class="table">{rendered}</div>')

    def render(self) -> str:
        style = (
            "body{font-family:sans-serif;max-width:1400px;margin:2em auto;color:#222}"
            "div.table{overflow-x:auto}table{border-collapse:collapse;font-size:90%}"
            "td,th{padding:2px 8px;border-bottom:1px solid #ddd}td{white-space:nowrap}"
            "th{vertical-align:bottom;text-align:left}"
            "img{max-width:100%}"
        )
        body = "\n".join(self.parts)
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n"
        )

    def write_charts(self, directory: Path) -> list[Path]:
        paths = []
        for name, png in self.charts.items():
            path = directory / f"{name}.png"
            path.write_bytes(png)
            paths.append(path)
        return paths


def local_day(seconds: pd.Series, utc_offset_hours: float) -> pd.Series:
    """The day number (days since 1970-01-01) of each Unix time, in the local time of the offset."""
    return np.floor((seconds + utc_offset_hours * 3600) / DAY_SECONDS)


def day_dates(days: pd.Series) -> pd.Series:
    """Day numbers as dates (datetime64)."""
    return pd.to_datetime(days * DAY_SECONDS, unit="s")


def publish_report(
    out_dir: Path,
    table_file: str,
    table: pd.DataFrame,
    page: Page,
    fields: dict[str, Any],
    source: Path,
    config: Any,
) -> Path:
    """A version holding `table` (CSV), its HTML report and charts, and a manifest of `fields` plus what
    every report records: its input and that input's fingerprint, and the parameters used."""

    def write(directory: Path) -> dict:
        table.to_csv(directory / table_file, index=False, float_format="%.4f")
        (directory / "report.html").write_text(page.render())
        page.write_charts(directory)
        return {
            **fields,
            "inputs": [str(source)],
            "data_fingerprint": versions.sha256_file(source),
            "parameters": asdict(config),
        }

    return versions.publish(out_dir, write)
