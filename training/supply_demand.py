"""Supply and demand per city × category × local day, from the job log, with anomalies flagged the day
they happen.

- created: jobs created that day; due: jobs whose time window starts that day (their creation day when
  they have no window); completed: jobs completed that day; never_taken: due jobs no technician took;
- active_technicians: technicians who completed a job in the cell that day;
- capacity: what the cell's technicians can do on a day, from the technicians who worked in the cell in
  the trailing window: Σ daily capacity (90th percentile of their jobs per attended day) × how often
  they come (attended days / days in the log), split evenly over the cells each worked in;
- capacity_used = completed / capacity; demand_ratio = due / capacity.

A day is judged against the cell's own history (the days before it, not after, so the flag is there
the day it happens; a cell is judged from its first whole window of `window_days` days on). Its
usual demand (`usual_due`) is the median of `due` over the trailing window, robust to the few
anomalous days a window may hold (the window's mean when the median is 0). A day's `due` is judged
as a negative binomial count with that mean and the variance of all the cell's days before, within
Tukey's fences (so that past anomalies do not count) and never below the Poisson variance: demand
that always varied more than Poisson's is not flagged for it. Each day tests every cell, in both
tails, together, and holds the false discovery rate of those tests at `alpha` (Benjamini-Hochberg):
on a normal day the chance of a flag anywhere is `alpha`, however many cells there are.
`orders_at_risk`: demand that surprisingly high, above capacity, and jobs in fact never taken;
`technicians_at_risk`: demand that surprisingly low, and less than half the capacity used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from training.report import Page, day_dates, local_day, publish_report

FORMAT = "shifu.supply-demand/1"
TABLE_FILE = "supply_demand.csv"


@dataclass(frozen=True)
class SupplyDemandConfig:
    utc_offset_hours: float = 8.0
    window_days: int = 28
    alpha: float = 0.001  # the false discovery rate of a day's flags, over all its cells
    capacity_quantile: float = 0.9

    def __post_init__(self) -> None:
        if self.window_days < 4:
            raise ValueError("need window_days >= 4 (a window's median and quartiles)")
        if not 0 < self.alpha < 0.5 or not 0 < self.capacity_quantile <= 1:
            raise ValueError("need 0 < alpha < 0.5 and 0 < capacity_quantile <= 1")


def _count(frame: pd.DataFrame, day: pd.Series, name: str) -> pd.Series:
    return frame.assign(day=day).groupby(["city", "category", "day"]).size().rename(name)


def _capacity(
    done: pd.DataFrame, days: np.ndarray, cells: pd.MultiIndex, config: SupplyDemandConfig
) -> pd.Series:
    """Trailing-window capacity per (cell, day); see the module docstring."""
    per_day = done.groupby(["technician_id", "day"]).size()
    span = days.max() - days.min() + 1
    daily_capacity = per_day.groupby("technician_id").quantile(config.capacity_quantile)
    presence = per_day.groupby("technician_id").size() / span
    weight = (daily_capacity * presence).rename("weight")

    techs = weight.index
    t_index = pd.Index(techs).get_indexer(done["technician_id"])
    c_index = cells.get_indexer(pd.MultiIndex.from_arrays([done["city"], done["category"]]))
    d_index = (done["day"].to_numpy() - days.min()).astype(int)
    counts = np.zeros((len(techs), len(cells), len(days)))
    np.add.at(counts, (t_index, c_index, d_index), 1.0)
    cumulative = np.concatenate([np.zeros((len(techs), len(cells), 1)), np.cumsum(counts, axis=2)], axis=2)
    end = np.arange(1, len(days) + 1)
    recent = cumulative[:, :, end] - cumulative[:, :, np.maximum(end - config.window_days, 0)]
    # A technician's daily capacity is split evenly over the cells they worked in recently: an even split,
    # not their share of jobs, so that a cell whose demand falls still counts the technicians it keeps.
    served = recent > 0
    n_served = served.sum(axis=1, keepdims=True)
    share = np.divide(served, n_served, out=np.zeros(served.shape), where=n_served > 0)
    capacity = np.einsum("t,tcd->cd", weight.to_numpy(), share)
    return pd.Series(
        capacity.ravel(),
        index=pd.MultiIndex.from_tuples(
            [(city, category, day) for city, category in cells for day in days],
            names=["city", "category", "day"],
        ),
        name="capacity",
    )


def _fenced_variance(days: np.ndarray) -> float:
    """The variance of the days inside Tukey's fences (1.5 interquartile ranges beyond the quartiles):
    the cell's usual variation, without the anomalous days its history holds."""
    days = days[np.isfinite(days)]
    low, high = np.percentile(days, [25, 75])
    reach = 1.5 * (high - low)
    return float(np.var(days[(days >= low - reach) & (days <= high + reach)], ddof=1))


def _surprise(due: pd.Series, config: SupplyDemandConfig) -> pd.DataFrame:
    """The usual demand of each day of one cell and how unlikely its `due` is under it, in each tail
    (NaN until the cell has a whole window of history); see the module docstring."""
    before = due.shift(1)
    window = before.rolling(config.window_days, min_periods=config.window_days)
    median, mean = window.median(), window.mean()
    usual = median.where(median > 0, mean)
    # The level of demand moves, so it comes from the trailing window; how much demand varies around
    # it is the cell's own, and all the days before estimate it better than one window does.
    variation = before.expanding(min_periods=config.window_days).apply(_fenced_variance, raw=True)
    variance = np.maximum(variation, usual)
    over = variance > usual  # over-dispersed: negative binomial; else Poisson
    safe = variance.where(over, usual + 1)  # keeps the unused negative binomial parameters valid
    n, p = usual**2 / (safe - usual), usual / safe
    high = np.where(over, stats.nbinom.sf(due - 1, n, p), stats.poisson.sf(due - 1, usual))
    low = np.where(over, stats.nbinom.cdf(due, n, p), stats.poisson.cdf(due, usual))
    return pd.DataFrame({"usual_due": usual, "p_high": high, "p_low": low}, index=due.index)


def _discoveries(table: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per day, over every judged cell and both tails: which tests are discoveries at false discovery
    rate `alpha` (Benjamini-Hochberg)."""
    found = pd.DataFrame(False, index=table.index, columns=["p_high", "p_low"])
    for _, day in table[table["usual_due"].notna()].groupby("day"):
        tests = day[["p_high", "p_low"]]
        adjusted = stats.false_discovery_control(tests.to_numpy().ravel()).reshape(tests.shape)
        found.loc[day.index] = adjusted < alpha
    return found


def daily_table(jobs: pd.DataFrame, config: SupplyDemandConfig) -> pd.DataFrame:
    created_day = local_day(jobs["created_at"], config.utc_offset_hours)
    due_day = local_day(jobs["time_window_start"].fillna(jobs["created_at"]), config.utc_offset_hours)
    taken = jobs["technician_id"] != ""
    done = jobs[taken & jobs["completed_at"].notna()]
    done = done.assign(day=local_day(done["completed_at"], config.utc_offset_hours))

    # Days run from the first service day: jobs created before it are the lead-in of the log, not a quiet day.
    days = np.arange(min(due_day.min(), done["day"].min()), max(due_day.max(), done["day"].max()) + 1)
    cells = pd.MultiIndex.from_frame(
        jobs[["city", "category"]].drop_duplicates().sort_values(["city", "category"])
    )
    index = pd.MultiIndex.from_tuples(
        [(city, category, day) for city, category in cells for day in days], names=["city", "category", "day"]
    )
    table = pd.concat(
        [
            _count(jobs, created_day, "created"),
            _count(jobs, due_day, "due"),
            _count(done, done["day"], "completed"),
            _count(jobs[~taken], due_day[~taken], "never_taken"),
            done.groupby(["city", "category", "day"])["technician_id"].nunique().rename("active_technicians"),
        ],
        axis=1,
    ).reindex(index, fill_value=0)
    table = table.fillna(0).astype(int).join(_capacity(done, days, cells, config))
    table["capacity_used"] = np.divide(table["completed"], table["capacity"].where(table["capacity"] > 0))
    table["demand_ratio"] = np.divide(table["due"], table["capacity"].where(table["capacity"] > 0))
    table = table.reset_index()

    table = table.join(
        pd.concat([_surprise(cell["due"], config) for _, cell in table.groupby(["city", "category"])])
    )
    found = _discoveries(table, config.alpha)
    table["orders_at_risk"] = found["p_high"] & (table["demand_ratio"] > 1) & (table["never_taken"] > 0)
    table["technicians_at_risk"] = found["p_low"] & (table["capacity_used"] < 0.5)
    table = table.drop(columns=["p_high", "p_low"])
    table.insert(2, "date", day_dates(table.pop("day")).dt.strftime("%Y-%m-%d"))
    return table.reset_index(drop=True)


def report(table: pd.DataFrame) -> Page:
    page = Page("Supply and demand")
    risky = table[table["orders_at_risk"] | table["technicians_at_risk"]]
    page.text(
        f"{table['date'].nunique()} days, "
        f"{table.groupby(['city', 'category']).ngroups} city × category cells; "
        f"{int(table['orders_at_risk'].sum())} cell-days with orders at risk (red), "
        f"{int(table['technicians_at_risk'].sum())} with technicians at risk (blue)."
    )
    cells = list(table.groupby(["city", "category"]))

    def draw(figure: Figure) -> None:
        columns = 4
        rows = -(-len(cells) // columns)
        axes = figure.subplots(rows, columns, sharex=True, squeeze=False)
        for ax, ((city, category), cell) in zip(axes.ravel(), cells, strict=False):
            dates = pd.to_datetime(cell["date"])
            ax.plot(dates, cell["due"], color="#444", lw=1, label="due")
            ax.plot(dates, cell["completed"], color="#1b9e77", lw=1, label="completed")
            ax.plot(dates, cell["capacity"], color="#7570b3", lw=1, ls="--", label="capacity")
            for flag, colour in (("orders_at_risk", "#d62728"), ("technicians_at_risk", "#1f77b4")):
                hits = cell[cell[flag]]
                ax.scatter(pd.to_datetime(hits["date"]), hits["due"], color=colour, s=18, zorder=3)
            ax.set_title(f"{city} · {category}", fontsize=9)
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
        for ax in axes.ravel()[len(cells) :]:
            ax.set_visible(False)
        axes[0, 0].legend(fontsize=7)
        figure.tight_layout()

    page.chart("supply_demand", draw, size=(14, 2.4 * -(-len(cells) // 4)))
    page.heading("Flagged days")
    columns = ["date", "city", "category", "due", "usual_due", "completed", "never_taken", "capacity",
               "capacity_used", "demand_ratio", "orders_at_risk", "technicians_at_risk"]  # fmt: skip
    page.table(risky[columns].sort_values(["date", "city", "category"]))
    return page


def publish(table: pd.DataFrame, config: SupplyDemandConfig, source: Path, out_dir: Path) -> Path:
    fields = {
        "format": FORMAT,
        "counts": {
            "cell_days": len(table),
            "orders_at_risk": int(table["orders_at_risk"].sum()),
            "technicians_at_risk": int(table["technicians_at_risk"].sum()),
        },
    }
    return publish_report(out_dir, TABLE_FILE, table, report(table), fields, source, config)
