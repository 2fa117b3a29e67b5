"""The console's charts: matplotlib figures written as inline SVG, drawn on the server, so a page needs
no JavaScript and loads nothing from anywhere. Figures are built with the object API (no pyplot): the
console draws from several threads."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d")


def svg(draw: Callable[[Axes], None], size: tuple[float, float] = (7.0, 3.0)) -> str:
    """The SVG element of one chart; `draw` fills its axes."""
    figure = Figure(figsize=size, layout="constrained")
    axes = figure.subplots()
    axes.spines[["top", "right"]].set_visible(False)
    draw(axes)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # without the XML prolog and DOCTYPE: it is inlined in HTML


def bars(labels: Sequence[str], values: Sequence[float], xlabel: str, highlight: Sequence[bool] = ()) -> str:
    """Horizontal bars, the first label on top; highlighted bars in orange."""

    def draw(axes: Axes) -> None:
        positions = np.arange(len(labels))
        colours = [PALETTE[1] if h else PALETTE[0] for h in highlight] or PALETTE[0]
        axes.barh(positions, values, color=colours)
        axes.set_yticks(positions, labels)
        axes.invert_yaxis()
        axes.set_xlabel(xlabel)

    return svg(draw, (7.0, max(1.6, 0.3 * len(labels) + 0.8)))


def intervals(
    labels: Sequence[str], values: Sequence[float], lows: Sequence[float], highs: Sequence[float], xlabel: str
) -> str:
    """Points with their intervals, one row per label."""

    def draw(axes: Axes) -> None:
        v, lo, hi = (np.asarray(a, dtype=float) for a in (values, lows, highs))
        positions = np.arange(len(labels))
        axes.errorbar(v, positions, xerr=[v - lo, hi - v], fmt="o", color=PALETTE[0], capsize=4)
        axes.set_yticks(positions, labels)
        axes.set_ylim(len(labels) - 0.5, -0.5)  # the first on top, rows half a step from the edges
        axes.set_xlabel(xlabel)

    return svg(draw, (7.0, max(1.6, 0.45 * len(labels) + 0.9)))


def lines(series: dict[str, tuple[Sequence[object], Sequence[float]]], ylabel: str, xlabel: str = "") -> str:
    """One line per series name: (x values, y values)."""

    def draw(axes: Axes) -> None:
        for k, (name, (x, y)) in enumerate(series.items()):
            axes.plot(
                np.asarray(x),
                np.asarray(y, dtype=float),
                label=name,
                color=PALETTE[k % len(PALETTE)],
                marker=".",
            )
        axes.set_ylabel(ylabel)
        axes.set_xlabel(xlabel)
        if 1 < len(series) <= 12:
            axes.legend(fontsize="small", ncols=2)
        axes.tick_params(axis="x", labelrotation=20)

    return svg(draw)


def heatmap(labels: Sequence[str], matrix: np.ndarray, title: str) -> str:
    """A square matrix with its values written in the cells."""

    def draw(axes: Axes) -> None:
        axes.imshow(matrix, cmap="Blues")
        axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        axes.set_yticks(range(len(labels)), labels)
        top = matrix.max() if matrix.size else 0
        for (i, j), value in np.ndenumerate(matrix):
            axes.text(
                j, i, f"{value:g}", ha="center", va="center", color="white" if value > top / 2 else "black"
            )
        axes.set_title(title)

    side = max(3.0, 0.6 * len(labels) + 1.5)
    return svg(draw, (side + 1.0, side))


def no_data(message: str) -> str:
    """An empty chart that says why: a page keeps its layout before any data exists."""

    def draw(axes: Axes) -> None:
        axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, color="#666")
        axes.set_axis_off()

    return svg(draw, (7.0, 1.2))
