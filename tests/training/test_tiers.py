"""Technician tiering: metrics on hand-made logs with known answers, segments, gates, the demo's habits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.dispatch import tiers as tier_table
from training import tiers
from training.readers import read_jobs

DAY = 86400
# 2026-08-03 00:00 in UTC+8 is 2026-08-02 16:00 UTC.
MONDAY = pd.Timestamp("2026-08-02T16:00:00Z").timestamp()
CONFIG = tiers.TierConfig(min_jobs_for_quality=1)


def job(
    tech: str,
    day: int,
    hour: float = 10,
    *,
    verified=True,
    late=False,
    rating=None,
    complaint=False,
    done=True,
):
    window_start = MONDAY + day * DAY + hour * 3600
    return {
        "job_id": f"{tech}-{day}-{hour}",
        "technician_id": tech,
        "city": "shanghai",
        "category": "repair",
        "created_at": window_start - 3600,
        "accepted_at": window_start - 1800,
        "completed_at": (window_start + (3 if late else 1) * 3600) if done else np.nan,
        "time_window_start": window_start,
        "time_window_end": window_start + 2 * 3600,
        "verified": verified,
        "rating": rating if rating is not None else np.nan,
        "complaint": complaint,
    }


def hand_made_log() -> pd.DataFrame:
    rows = [
        # a: 3 days, 2 jobs a day, one of the 6 unverified, one late, ratings 5 and 3, one complaint
        *[job("a", d, h) for d in (0, 1, 2) for h in (9, 14)],
        # b: 1 day, 4 jobs
        *[job("b", 5, h) for h in (8, 10, 12, 14)],
        # c: a job taken but never completed does not count
        job("c", 3, done=False),
    ]
    rows[1]["verified"] = False
    rows[2]["completed_at"] += 2 * 3600  # late
    rows[3]["rating"], rows[4]["rating"] = 5, 3
    rows[5]["complaint"] = True
    return pd.DataFrame(rows)


def test_metrics_match_a_hand_computation() -> None:
    metrics = tiers.technician_metrics(hand_made_log(), CONFIG).set_index("technician_id")
    a, b = metrics.loc["a"], metrics.loc["b"]
    assert a["period"] == "2026-08" and a["attendance_days"] == 3 and a["jobs_completed"] == 6
    assert a["efficiency"] == pytest.approx(5 / 3) and a["completed"] == pytest.approx(5)
    assert a["verification_rate"] == pytest.approx(5 / 6)
    assert a["on_time_rate"] == pytest.approx(5 / 6)
    assert a["mean_rating"] == pytest.approx(4.0) and a["complaint_rate"] == pytest.approx(1 / 6)
    assert b["attendance_days"] == 1 and b["efficiency"] == 4 and np.isnan(b["mean_rating"])
    assert "c" not in metrics.index


def test_attendance_counts_local_days_not_utc_days() -> None:
    # 23:30 and 00:30 Shanghai time are two local days but one UTC day.
    log = pd.DataFrame([job("a", 0, 21.5), job("a", 0, 22.5)])
    log["completed_at"] = log["time_window_start"] + 2 * 3600
    assert tiers.technician_metrics(log, CONFIG)["attendance_days"].iat[0] == 2
    utc = tiers.technician_metrics(log, tiers.TierConfig(utc_offset_hours=0))
    assert utc["attendance_days"].iat[0] == 1


def test_28_day_cycles_count_from_the_first_day() -> None:
    log = pd.DataFrame([job("a", 0), job("a", 27), job("a", 28)])
    periods = tiers.technician_metrics(log, tiers.TierConfig(period="28d"))["period"].tolist()
    assert periods == ["2026-08-03+28d", "2026-08-31+28d"]


def test_otsu_splits_two_groups_between_them() -> None:
    assert 6 < tiers.otsu_threshold(np.array([2, 3, 3, 4, 9, 10, 10, 11], dtype=float)) < 9
    assert tiers.otsu_threshold(np.array([5.0, 5.0])) == 5.0


def metrics_frame(rows: list[tuple]) -> pd.DataFrame:
    columns = ["technician_id", "attendance_days", "efficiency", "jobs_completed", "verification_rate",
               "mean_rating", "complaint_rate"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(period="2026-08", completed=frame["attendance_days"] * frame["efficiency"])


def test_segments_and_tiers_follow_the_documented_rule() -> None:
    frame = metrics_frame([
        ("core", 25, 5.0, 125, 0.99, 4.7, 0.0),
        ("star", 25, 5.0, 125, 0.99, 4.9, 0.0),
        ("fast", 5, 5.0, 25, 0.99, 4.7, 0.0),
        ("slow", 25, 1.0, 25, 0.99, 4.7, 0.0),
        ("rest", 5, 1.0, 5, 0.99, 4.7, 0.0),
        ("sloppy_core", 25, 5.0, 125, 0.60, 4.7, 0.0),
        ("complained", 5, 1.0, 5, 0.99, 4.7, 0.2),
    ])  # fmt: skip
    config = tiers.TierConfig(attendance_threshold=15, efficiency_threshold=3)
    tiered, thresholds = tiers.assign_tiers(frame, config)
    got = tiered.set_index("technician_id")[["segment", "tier", "quality_flags"]].to_dict("index")
    assert got["core"] == {"segment": "core", "tier": 4, "quality_flags": ""}
    assert got["star"]["tier"] == 5
    assert got["fast"]["segment"] == "high_efficiency_low_attendance" and got["fast"]["tier"] == 3
    assert got["slow"]["segment"] == "high_attendance_low_efficiency" and got["slow"]["tier"] == 3
    assert got["rest"] == {"segment": "developing", "tier": 2, "quality_flags": ""}
    assert got["sloppy_core"] == {"segment": "core", "tier": 3, "quality_flags": "low_verification"}
    assert got["complained"] == {"segment": "developing", "tier": 1, "quality_flags": "complaints"}
    assert thresholds == {"2026-08": {"attendance_days": 15, "efficiency": 3}}


def test_too_few_jobs_are_not_judged_on_quality() -> None:
    frame = metrics_frame([("new", 2, 1.0, 2, 0.5, 2.0, 0.5)])
    tiered, _ = tiers.assign_tiers(frame, tiers.TierConfig(attendance_threshold=15, efficiency_threshold=3))
    assert tiered["quality_flags"].iat[0] == "" and tiered["tier"].iat[0] == 2


def test_planted_habits_are_recovered_as_their_segments(world: dict[str, Path]) -> None:
    jobs, _ = read_jobs(world["job_log.csv"])
    table, _ = tiers.compute(jobs, tiers.TierConfig())
    habits = pd.read_csv(world["technician_habits.csv"])
    joined = table.merge(habits, on="technician_id")
    share = pd.crosstab(joined["habit"], joined["segment"], normalize="index")
    assert share.loc["core", "core"] > 0.8
    assert share.loc["part_time_fast", "high_efficiency_low_attendance"] > 0.8
    assert share.loc["full_time_slow", "high_attendance_low_efficiency"] > 0.7
    tier_share = pd.crosstab(joined["habit"], joined["tier"], normalize="index")
    assert tier_share.loc["unreliable", 1] > 0.7
    assert joined.groupby("habit")["tier"].mean().idxmax() == "core"


def test_published_table_loads_as_latest_tier_per_technician(world: dict[str, Path], tmp_path: Path) -> None:
    jobs, _ = read_jobs(world["job_log.csv"])
    table, thresholds = tiers.compute(jobs, tiers.TierConfig())
    version = tiers.publish(table, thresholds, tiers.TierConfig(), world["job_log.csv"], tmp_path)
    assert {"report.html", "tiers_scatter.png", "tiers_by_city.png", "technicians.csv"} <= {
        p.name for p in version.iterdir()
    }
    loaded = tier_table.load(version)
    latest = table.sort_values("period").groupby("technician_id").last()["tier"].to_dict()
    assert loaded.tiers == latest


def test_only_complete_periods_set_tiers(tmp_path: Path) -> None:
    """Measured before: `tiers --period 28d` published tiers from a period holding 8 days of data."""
    config = tiers.TierConfig(period="28d", min_jobs_for_quality=1)
    # a works every day of the first 28-day cycle, then only 2 days of the 8 the log has of the next.
    log = pd.DataFrame(
        [job("a", d) for d in range(28)]
        + [job("a", 28), job("a", 35)]
        + [job("b", d) for d in range(0, 36, 5)]
    )
    table, thresholds = tiers.compute(log, config)
    cycles = table.drop_duplicates("period").set_index("period")["complete"].to_dict()
    assert list(cycles.values()) == [True, False]
    first_cycle = min(cycles)
    assert tiers.latest_complete_period(table) == first_cycle
    version = tiers.publish(table, thresholds, config, _log_file(tmp_path, log), tmp_path / "tiers")
    served = tier_table.load(version)
    expected = table[table["period"] == first_cycle].set_index("technician_id")["tier"].to_dict()
    partial = table[table["period"] != first_cycle].set_index("technician_id")["tier"].to_dict()
    assert partial != expected  # so serving the partial cycle would be caught
    assert served.tiers == {t: int(v) for t, v in expected.items()}


def _log_file(tmp_path: Path, log: pd.DataFrame) -> Path:
    path = tmp_path / "job_log.csv"
    log.to_csv(path, index=False)
    return path
