"""Human reports: charts drawn with matplotlib, saved as PNG and put together in one HTML page."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers
import matplotlib.pyplot as plt
import pandas as pd

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
        self.parts.append(frame.to_html(index=False, float_format=lambda v: f"{v:.2f}", na_rep="", border=0))

    def render(self) -> str:
        style = (
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
            "table{border-collapse:collapse;font-size:90%}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
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
