"""audiences.html: how many users carry each tag, since when (the trend of entries per day), how the tags
overlap, and a few example users per tag (training/report.py's Page: matplotlib charts inlined)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from models.audiences.rules import TagRule
from training.report import Page

EXAMPLES = 5


def _sizes(figure: plt.Figure, users: pd.Series) -> None:
    axes = figure.add_subplot()
    axes.barh(users.index[::-1], users.to_numpy()[::-1], color="#1b9e77")
    axes.set_xlabel("users carrying the tag")


def _trend(figure: plt.Figure, tags: pd.DataFrame, as_of: pd.Timestamp) -> None:
    """Users entering each tag per day (by `since`) over the last 90 days."""
    axes = figure.add_subplot()
    recent = tags[tags["since"] > as_of - pd.Timedelta(days=90)]
    daily = recent.assign(day=recent["since"].dt.floor("D")).groupby(["day", "tag"])["user_id"].nunique()
    for tag, series in daily.unstack(fill_value=0).items():
        axes.plot(series.index, series.to_numpy(), marker=".", label=str(tag))
    axes.set_ylabel("users entering the tag")
    axes.legend(fontsize="small")
    figure.autofmt_xdate()


def overlap(tags: pd.DataFrame) -> pd.DataFrame:
    """Users carrying both tags (the diagonal: each tag's users)."""
    membership = pd.crosstab(tags["user_id"], tags["tag"]).clip(upper=1)
    return membership.T @ membership


def _overlap(figure: plt.Figure, matrix: pd.DataFrame) -> None:
    axes = figure.add_subplot()
    image = axes.imshow(matrix.to_numpy(), cmap="Greens")
    axes.set_xticks(range(len(matrix)), matrix.columns, rotation=45, ha="right")
    axes.set_yticks(range(len(matrix)), matrix.index)
    for (row, column), value in pd.DataFrame(matrix.to_numpy()).stack().items():
        axes.text(column, row, str(value), ha="center", va="center", fontsize="small")
    figure.colorbar(image, label="users in both")


def write(tags: pd.DataFrame, rules: list[TagRule], as_of: float, path: Path) -> None:
    """`tags`: the published table (since as UTC timestamps)."""
    moment = pd.Timestamp(as_of, unit="s", tz="UTC")
    page = Page(f"Audiences as of {moment.isoformat()}")
    users = tags.groupby("tag")["user_id"].nunique().reindex([r.name for r in rules], fill_value=0)
    page.heading("Tag sizes")
    page.table(
        pd.DataFrame({"tag": users.index, "users": users.to_numpy(), "rule": [r.description for r in rules]})
    )
    page.chart("tag sizes", lambda figure: _sizes(figure, users), (9, 4))
    if tags.empty:
        page.text("No user carries any tag.")
    else:
        page.heading("Trend: users entering each tag per day (last 90 days)")
        page.chart("trend", lambda figure: _trend(figure, tags, moment))
        page.heading("Overlap: users carrying both tags")
        matrix = overlap(tags)
        page.chart("overlap", lambda figure: _overlap(figure, matrix), (7, 6))
        page.heading("Examples")
        examples = tags.groupby("tag", sort=False).head(EXAMPLES)
        page.table(examples.assign(suggested_item_ids=examples["suggested_item_ids"].map(" ".join)))
    path.write_text(page.render(), encoding="utf-8")
