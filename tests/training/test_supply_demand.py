"""Supply and demand per city × category × day: counts with known answers, capacity, and planted anomalies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training import supply_demand as sd
from training.demo_jobs import LULL, SPIKE, JobLogSize
from training.readers import read_jobs

DAY = 86400
START = pd.Timestamp("2026-08-02T16:00:00Z").timestamp()  # 2026-08-03 00:00 in UTC+8


def job(
    n: int, day: int, tech: str, city: str = "shanghai", category: str = "repair", done: bool = True
) -> dict:
    window = START + day * DAY + 10 * 3600
    return {
        "job_id": f"j{n}",
        "technician_id": tech,
        "city": city,
        "category": category,
        "created_at": window - 2 * DAY,
        "completed_at": window + 3600 if tech and done else np.nan,
        "time_window_start": window,
    }


def test_daily_counts_match_a_hand_computation() -> None:
    rows = [
        job(1, 0, "a"), job(2, 0, "b"), job(3, 0, ""), job(4, 1, "a"), job(5, 1, "a", done=False),
        job(6, 1, "c", category="cleaning"),
    ]  # fmt: skip
    table = sd.daily_table(pd.DataFrame(rows), sd.SupplyDemandConfig()).set_index(
        ["date", "city", "category"]
    )
    day0 = table.loc[("2026-08-03", "shanghai", "repair")]
    assert (day0["due"], day0["completed"], day0["never_taken"], day0["active_technicians"]) == (3, 2, 1, 2)
    day1 = table.loc[("2026-08-04", "shanghai", "repair")]
    assert (day1["due"], day1["completed"], day1["never_taken"], day1["active_technicians"]) == (2, 1, 0, 1)
    assert table.loc[("2026-08-04", "shanghai", "cleaning"), "completed"] == 1
    assert table.loc[("2026-08-03", "shanghai", "cleaning"), "due"] == 0  # cells exist every day
    # created counts by creation day: jobs created before the first service day are outside the table
    assert table["created"].sum() == 0


def test_capacity_is_daily_pace_times_presence_split_over_cells() -> None:
    # t works every other day, 3 jobs a day, always in one cell: capacity 3 × 1/2 = 1.5 a day.
    rows = [job(10 * d + k, d, "t") for d in range(0, 20, 2) for k in range(3)]
    table = sd.daily_table(pd.DataFrame(rows), sd.SupplyDemandConfig())
    assert table["capacity"].iloc[-1] == pytest.approx(3 * 10 / 19)
    assert table.loc[table["due"] == 3, "capacity_used"].iloc[-1] == pytest.approx(3 / (3 * 10 / 19))


def cell_log(due: list[int], never_taken: dict[int, int] | None = None) -> pd.DataFrame:
    """One cell's jobs: `due[d]` on day d, done by three technicians in turn, and on the days of
    `never_taken` that many more that nobody took."""
    rows = [job(1000 * d + k, d, "abc"[k % 3]) for d, n in enumerate(due) for k in range(n)]
    rows += [job(1000 * d + 999 - k, d, "") for d, n in (never_taken or {}).items() for k in range(n)]
    return pd.DataFrame(rows)


def last_day(log: pd.DataFrame) -> pd.Series:
    return sd.daily_table(log, sd.SupplyDemandConfig()).iloc[-1]


def test_a_surge_every_job_of_which_was_taken_puts_no_order_at_risk() -> None:
    """Measured before: 2026-08-13 Beijing repair was flagged orders at risk with 0 jobs never taken."""
    steady = [10] * 40
    assert not last_day(cell_log([*steady, 40]))["orders_at_risk"]
    assert last_day(cell_log([*steady, 20], never_taken={40: 20}))["orders_at_risk"]


def test_a_cell_is_judged_from_its_first_whole_window_on() -> None:
    """Before, a day was judged from 10 days of history on: the noisiest days flagged most."""
    assert not last_day(cell_log([*[10] * 15, 20], never_taken={15: 20}))["orders_at_risk"]


def test_demand_that_always_varied_this_much_is_not_flagged() -> None:
    """A cell alternating between 5 and 25 jobs a day: a day of 1 is within what it does (Poisson
    around its median of 15 called it a one-in-200,000 day), a day of 1 in a steady cell is not."""
    assert not last_day(cell_log([*[5, 25] * 20, 1]))["technicians_at_risk"]
    assert last_day(cell_log([*np.random.default_rng(3).poisson(15, 40).tolist(), 1]))["technicians_at_risk"]


def test_planted_spike_and_lull_are_flagged_and_nothing_else(world: dict[str, Path]) -> None:
    """Measured before, on the full demo: 13 days flagged, 4 of them outside the planted anomalies."""
    jobs, _ = read_jobs(world["job_log.csv"])
    table = sd.daily_table(jobs, sd.SupplyDemandConfig())
    first = pd.Timestamp(JobLogSize().first_day)
    dates = pd.to_datetime(table["date"])

    def planted(anomaly) -> pd.Series:
        city, category, start, days = anomaly
        in_days = (dates >= first + pd.Timedelta(days=start)) & (
            dates < first + pd.Timedelta(days=start + days)
        )
        return (table["city"] == city) & (table["category"] == category) & in_days

    spike, lull = planted(SPIKE), planted(LULL)
    assert table.loc[spike, "orders_at_risk"].sum() >= 3
    assert table.loc[lull, "technicians_at_risk"].sum() >= 2
    elsewhere = (table["orders_at_risk"] | table["technicians_at_risk"]) & ~spike & ~lull
    assert not elsewhere.any(), table[elsewhere]


def test_published_report_has_table_chart_and_page(world: dict[str, Path], tmp_path: Path) -> None:
    jobs, _ = read_jobs(world["job_log.csv"])
    config = sd.SupplyDemandConfig()
    version = sd.publish(sd.daily_table(jobs, config), config, world["job_log.csv"], tmp_path)
    assert {"supply_demand.csv", "supply_demand.png", "report.html"} <= {p.name for p in version.iterdir()}
    page = (version / "report.html").read_text()
    assert "Flagged days" in page and "data:image/png;base64," in page


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        sd.SupplyDemandConfig(window_days=3)
