"""The demo's technicians: the dispatch day's are the job log's in its city, the day asks for a day plan,
and what docs/dispatch.md says of the demo's tiers and supply-demand report holds on a fresh demo."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from models.dispatch import tiers as tier_table
from training import docs_figures, supply_demand, tiers
from training.demo import DemoSize
from training.demo_jobs import CITIES, LULL, SPIKE, JobLogSize, technician_world
from training.readers import read_jobs

# What each planted habit should come out as (technician_habits.csv says who has which).
HABIT_SEGMENT = {
    "core": "core",
    "part_time_fast": "high_efficiency_low_attendance",
    "full_time_slow": "high_attendance_low_efficiency",
    "unreliable": "developing",
}


@pytest.fixture(scope="module")
def demo() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(technicians with their habit, job log as the reports read it) of `python -m training demo`
    (default seed and size)."""
    habits, _, log = technician_world(7, DemoSize())
    return habits, docs_figures.as_read(log)


@pytest.fixture(scope="module")
def demo_jobs(demo: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return demo[1]


def day_city(day: dict) -> str:
    """The city the day's technicians are in: the one nearest to their mean position."""
    lat = sum(t["location"]["lat"] for t in day["technicians"]) / len(day["technicians"])
    lng = sum(t["location"]["lng"] for t in day["technicians"]) / len(day["technicians"])
    return min(CITIES, key=lambda c: math.dist(CITIES[c], (lat, lng)))


def test_day_technicians_take_tiers_from_their_own_city(world: dict[str, Path], tmp_path: Path) -> None:
    """Measured before: 67 of the demo day's 80 technicians took the tier of a namesake in another
    city (t0044's from Chengdu, t0007's from Beijing)."""
    day = json.loads(world["dispatch_day.json"].read_text())
    log = pd.read_csv(world["job_log.csv"], dtype=str, keep_default_na=False)
    cities_of = log[log["technician_id"] != ""].groupby("technician_id")["city"].agg(set)
    jobs, _ = read_jobs(world["job_log.csv"])
    table, thresholds = tiers.compute(jobs, tiers.TierConfig())
    served = tier_table.load(
        tiers.publish(table, thresholds, tiers.TierConfig(), world["job_log.csv"], tmp_path)
    )
    city = day_city(day)
    tiered = [t["technicianId"] for t in day["technicians"] if served.tier_of(t["technicianId"]) is not None]
    assert len(tiered) >= 0.9 * len(day["technicians"])  # the day's technicians are the log's
    assert [t for t in tiered if city not in cities_of[t]] == []


def test_day_technicians_have_the_skills_of_what_they_do_in_the_log(world: dict[str, Path]) -> None:
    day = json.loads(world["dispatch_day.json"].read_text())
    log = pd.read_csv(world["job_log.csv"], dtype=str, keep_default_na=False)
    skills_of = log[log["technician_id"] != ""].groupby("technician_id")["required_skills"].agg(set)
    for technician in day["technicians"]:
        assert skills_of.get(technician["technicianId"], set()) <= set(technician["skills"])


def test_the_demo_day_asks_for_a_route_plan(world: dict[str, Path]) -> None:
    options = json.loads(world["dispatch_day.json"].read_text())["options"]
    assert options["mode"] == "ASSIGN_MODE_ROUTE" and 1000 <= options["timeLimitMs"] <= 10000


def flagged_outside_and_found(table: pd.DataFrame) -> tuple[int, int, int]:
    """(flagged days outside the planted anomalies, spike days flagged, lull days flagged)."""
    first = pd.Timestamp(JobLogSize().first_day)
    dates = pd.to_datetime(table["date"])

    def planted(anomaly: tuple[str, str, int, int]) -> pd.Series:
        city, category, start, days = anomaly
        begin, end = first + pd.Timedelta(days=start), first + pd.Timedelta(days=start + days)
        return (table["city"] == city) & (table["category"] == category) & (dates >= begin) & (dates < end)

    spike, lull = planted(SPIKE), planted(LULL)
    flagged = table["orders_at_risk"] | table["technicians_at_risk"]
    return (
        int((flagged & ~spike & ~lull).sum()),
        int(table.loc[spike, "orders_at_risk"].sum()),
        int(table.loc[lull, "technicians_at_risk"].sum()),
    )


def test_the_supply_demand_report_flags_the_planted_anomalies_and_nothing_else(
    demo_jobs: pd.DataFrame,
) -> None:
    """docs/dispatch.md: the report flags the two planted anomalies and nothing else. Measured before: 13 days
    flagged, 4 of them outside the anomalies (2026-08-13 Beijing repair: every job taken)."""
    table = supply_demand.daily_table(demo_jobs, supply_demand.SupplyDemandConfig())
    outside, spike_days, lull_days = flagged_outside_and_found(table)
    assert outside == 0
    assert spike_days >= SPIKE[3] - 1 and lull_days >= 2


def test_the_tiers_recover_the_planted_habits(demo: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """docs/dispatch.md: in the latest whole month, at least 80% of each planted habit comes out in its
    segment, at least 80% of the unreliable technicians at tier 1, and core technicians have the highest
    tiers."""
    habits, jobs = demo
    table, _ = tiers.compute(jobs, tiers.TierConfig())
    latest = table[table["period"] == tiers.latest_complete_period(table)].merge(habits, on="technician_id")
    recovered = (latest["segment"] == latest["habit"].map(HABIT_SEGMENT)).groupby(latest["habit"]).mean()
    assert recovered.min() >= 0.8, recovered.to_dict()
    unreliable = latest[latest["habit"] == "unreliable"]
    assert (unreliable["tier"] == 1).mean() >= 0.8
    assert latest.groupby("habit")["tier"].mean().idxmax() == "core"


def test_docs_figures_are_the_reports_charts(demo_jobs: pd.DataFrame) -> None:
    figures = docs_figures.figures(demo_jobs)
    assert set(figures) == {"tiers_scatter", "tiers_by_city", "supply_demand"}
    assert all(png.startswith(b"\x89PNG") and len(png) > 10_000 for png in figures.values())
