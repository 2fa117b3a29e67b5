"""Supply and demand per city × category × local day, from the job log, with anomalies flagged the day
they happen.

- created: jobs created that day; due: jobs whose time window starts that day (their creation day when
  they have no window); completed: jobs completed that day; never_taken: due jobs no technician took;
- active_technicians: technicians who completed a job in the cell that day;
- capacity: what the cell's technicians can do on a day, from the technicians who worked in the cell in
  the trailing window: Σ daily capacity (90th percentile of their jobs per attended day) × how often
  they come (attended days / days in the log), split evenly over the cells each worked in;
- capacity_used = completed / capacity; demand_ratio = due / capacity.

A day is flagged against the cell's own trailing window (the days before it, not after, so the flag
is there the day it happens). Its usual demand is the median of `due` over the window; a day's `due`
is judged as a Poisson count around it: `orders_at_risk` when demand exceeds capacity and so many jobs
would come with probability below `alpha`; `technicians_at_risk` when less than half the capacity is
used and so few jobs would come with probability below `alpha`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import poisson

from training.report import Page, day_dates, local_day, publish_report

FORMAT = "shifu.supply-demand/1"
TABLE_FILE = "supply_demand.csv"


@dataclass(frozen=True)
class SupplyDemandConfig:
    utc_offset_hours: float = 8.0
    window_days: int = 28
    min_history_days: int = 10
    alpha: float = 0.001  # how unlikely, for usual demand, a day must be to be flagged
    capacity_quantile: float = 0.9

    def __post_init__(self) -> None:
        if self.window_days < 2 or not 1 <= self.min_history_days < self.window_days:
            raise ValueError("need window_days >= 2 and 1 <= min_history_days < window_days")
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


def _trailing_median(values: pd.Series, config: SupplyDemandConfig) -> pd.Series:
    """Median of the `window_days` days before each day (not including it): robust, so a few anomalous
    days in the window do not hide the next ones."""
    return values.shift(1).rolling(config.window_days, min_periods=config.min_history_days).median()


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

    flagged = []
    for _, cell in table.groupby(["city", "category"], sort=False):
        usual = _trailing_median(cell["due"], config)
        # Demand counts are Poisson around their usual level: flag what is that unlikely, in one tail.
        surge = pd.Series(poisson.sf(cell["due"] - 1, usual), index=cell.index) < config.alpha
        slump = pd.Series(poisson.cdf(cell["due"], usual), index=cell.index) < config.alpha
        flagged.append(
            cell.assign(
                orders_at_risk=surge & (cell["demand_ratio"] > 1) & usual.notna(),
                technicians_at_risk=slump & (cell["capacity_used"] < 0.5) & usual.notna(),
            )
        )
    table = pd.concat(flagged)
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
    columns = ["date", "city", "category", "due", "completed", "never_taken", "capacity", "capacity_used",
               "demand_ratio", "orders_at_risk", "technicians_at_risk"]  # fmt: skip
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
