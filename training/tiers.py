"""Technician tiering from the job log: per technician and period, attendance × efficiency, quality, a
segment and the tier dispatch uses.

- attendance_days: local calendar days with at least one completed job;
- efficiency: verified completed jobs per attendance day; completed = attendance_days × efficiency;
- on_time_rate, verification_rate, mean_rating, complaint_rate: quality, over the completed jobs.

Segments cut attendance and efficiency at thresholds derived from each period's data (by default the
two-class split that best separates the values, Otsu's method; or a quantile; or fixed numbers):
core (high, high), high_efficiency_low_attendance (fast but rarely there: worth activating),
high_attendance_low_efficiency (always there but slow: worth training), developing (the rest).

Tier rule (1 entry .. 5 best): core 4, the two mixed segments 3, developing 2; a technician who fails a
quality gate (verification, rating or complaints) drops one tier, and a core technician who passes all
of them with a mean rating of at least `excellent_rating` rises to 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.dispatch.tiers import FORMAT, TABLE_FILE
from training.report import SEGMENT_COLOURS, Page, day_dates, local_day, publish_report

SEGMENT_TIER = {
    "core": 4,
    "high_efficiency_low_attendance": 3,
    "high_attendance_low_efficiency": 3,
    "developing": 2,
}


@dataclass(frozen=True)
class TierConfig:
    period: str = "month"  # "month" or "28d"
    utc_offset_hours: float = 8.0  # local days for attendance (China Standard Time)
    threshold_method: str = "otsu"  # "otsu" or "quantile"
    threshold_quantile: float = 0.5
    attendance_threshold: float | None = None  # fixed cut, overrides the method
    efficiency_threshold: float | None = None
    min_verification_rate: float = 0.9
    min_mean_rating: float = 4.5
    max_complaint_rate: float = 0.05
    excellent_rating: float = 4.8
    min_jobs_for_quality: int = 5  # fewer completed jobs: too few to judge quality

    def __post_init__(self) -> None:
        if self.period not in ("month", "28d"):
            raise ValueError(f"period must be 'month' or '28d', got {self.period!r}")
        if self.threshold_method not in ("otsu", "quantile"):
            raise ValueError(f"threshold method must be 'otsu' or 'quantile', got {self.threshold_method!r}")
        if not 0 < self.threshold_quantile < 1:
            raise ValueError("threshold quantile must be between 0 and 1")


def period_labels(local_day: pd.Series, period: str, first_day: float) -> pd.Series:
    """'2026-08' for calendar months; '2026-08-01+28d' for 28-day cycles counted from the log's first day."""
    dates = day_dates(local_day)
    if period == "month":
        return dates.dt.strftime("%Y-%m")
    cycle_start = first_day + ((local_day - first_day) // 28) * 28
    return day_dates(cycle_start).dt.strftime("%Y-%m-%d") + "+28d"


def period_complete(local_day: pd.Series, period: str, first_day: float, last_day: float) -> pd.Series:
    """Whether the log covers the whole period of each day: only complete periods set tiers (a period
    seen for 8 of its 28 days would judge technicians on a week)."""
    dates = day_dates(local_day)
    if period == "month":
        start = local_day - (dates.dt.day - 1)
        end = start + dates.dt.days_in_month - 1
    else:
        start = first_day + ((local_day - first_day) // 28) * 28
        end = start + 27
    return (start >= first_day) & (end <= last_day)


def latest_complete_period(table: pd.DataFrame) -> str:
    """The newest period the log covers whole ("" when there is none)."""
    complete = table[table["complete"]]
    return str(complete["period"].max()) if len(complete) else ""


def technician_metrics(jobs: pd.DataFrame, config: TierConfig) -> pd.DataFrame:
    """One row per technician and period with a completed job, and whether the period is complete."""
    done = jobs[(jobs["technician_id"] != "") & jobs["completed_at"].notna()].copy()
    days = local_day(done["completed_at"], config.utc_offset_hours)
    done["local_day"] = days
    first, last = (float(days.min()), float(days.max())) if len(done) else (0.0, 0.0)
    done["period"] = period_labels(days, config.period, first)
    done["complete"] = period_complete(days, config.period, first, last)
    done["on_time"] = np.where(
        done["time_window_end"].notna(), done["completed_at"] <= done["time_window_end"], np.nan
    )
    grouped = done.groupby(["technician_id", "period"])
    metrics = grouped.agg(
        city=("city", lambda c: c.mode().iat[0]),
        complete=("complete", "all"),
        attendance_days=("local_day", "nunique"),
        jobs_completed=("job_id", "size"),
        verified_completed=("verified", "sum"),
        on_time_rate=("on_time", "mean"),
        verification_rate=("verified", "mean"),
        mean_rating=("rating", "mean"),
        complaint_rate=("complaint", "mean"),
    ).reset_index()
    metrics["efficiency"] = metrics["verified_completed"] / metrics["attendance_days"]
    metrics["completed"] = metrics["attendance_days"] * metrics["efficiency"]
    return metrics


def otsu_threshold(values: np.ndarray) -> float:
    """The cut that maximises the between-class variance of a two-class split (ties: the lower cut)."""
    v = np.sort(values[np.isfinite(values)])
    if v.size < 2 or v[0] == v[-1]:
        return float(v[0]) if v.size else 0.0
    n = v.size
    left_sum = np.cumsum(v)[:-1]
    k = np.arange(1, n)
    mean_left, mean_right = left_sum / k, (v.sum() - left_sum) / (n - k)
    between = k * (n - k) * (mean_left - mean_right) ** 2
    between[v[1:] == v[:-1]] = -1.0  # a cut must fall between different values
    best = int(np.argmax(between))
    return float((v[best] + v[best + 1]) / 2)


def _threshold(values: pd.Series, fixed: float | None, config: TierConfig) -> float:
    if fixed is not None:
        return fixed
    if config.threshold_method == "quantile":
        return float(values.quantile(config.threshold_quantile))
    return otsu_threshold(values.to_numpy(dtype=float))


def assign_tiers(
    metrics: pd.DataFrame, config: TierConfig
) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """Adds segment, quality_flags and tier; returns the thresholds used per period as well."""
    out, thresholds = [], {}
    for period, rows in metrics.groupby("period", sort=True):
        attendance_cut = _threshold(rows["attendance_days"], config.attendance_threshold, config)
        efficiency_cut = _threshold(rows["efficiency"], config.efficiency_threshold, config)
        thresholds[str(period)] = {"attendance_days": attendance_cut, "efficiency": efficiency_cut}
        high_att = rows["attendance_days"] >= attendance_cut
        high_eff = rows["efficiency"] >= efficiency_cut
        segment = np.select(
            [high_att & high_eff, high_eff, high_att],
            ["core", "high_efficiency_low_attendance", "high_attendance_low_efficiency"],
            "developing",
        )
        out.append(rows.assign(segment=segment))
    tiered = pd.concat(out, ignore_index=True) if out else metrics.assign(segment=pd.Series(dtype=str))
    judged = tiered["jobs_completed"] >= config.min_jobs_for_quality
    gates = {
        "low_verification": judged & (tiered["verification_rate"] < config.min_verification_rate),
        "low_rating": judged & (tiered["mean_rating"] < config.min_mean_rating),
        "complaints": judged & (tiered["complaint_rate"] > config.max_complaint_rate),
    }
    flags = pd.DataFrame(gates)
    tiered["quality_flags"] = flags.apply(lambda r: "|".join(name for name, hit in r.items() if hit), axis=1)
    failed = flags.any(axis=1)
    excellent = (
        (tiered["segment"] == "core") & judged & ~failed & (tiered["mean_rating"] >= config.excellent_rating)
    )
    base = tiered["segment"].map(SEGMENT_TIER)
    tiered["tier"] = np.clip(base - failed.astype(int) + excellent.astype(int), 1, 5).astype(int)
    return tiered, thresholds


def compute(jobs: pd.DataFrame, config: TierConfig) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    return assign_tiers(technician_metrics(jobs, config), config)


# The answer first (tier, segment, the quality gates failed), then what it was computed from.
COLUMNS = [
    "technician_id", "period", "complete", "tier", "segment", "quality_flags", "city", "attendance_days",
    "efficiency", "completed", "jobs_completed", "on_time_rate", "verification_rate", "mean_rating",
    "complaint_rate",
]  # fmt: skip


def report(table: pd.DataFrame, thresholds: dict[str, dict[str, float]]) -> Page:
    period = latest_complete_period(table)
    latest = table[table["period"] == period]
    cut = thresholds[period]
    page = Page(f"Technician tiers, {period}")
    counts = latest["segment"].value_counts()
    page.text(
        f"{len(latest)} technicians worked in {period}. "
        f"Attendance is cut at {cut['attendance_days']:.1f} days "
        f"and efficiency at {cut['efficiency']:.2f} verified jobs per day: "
        + ", ".join(f"{counts.get(s, 0)} {s.replace('_', ' ')}" for s in SEGMENT_TIER)
        + f". {int((latest['quality_flags'] != '').sum())} failed a quality gate and dropped a tier."
    )

    def scatter(figure: Figure) -> None:
        ax = figure.add_subplot()
        for segment, colour in SEGMENT_COLOURS.items():
            rows = latest[latest["segment"] == segment]
            flagged = rows["quality_flags"] != ""
            ax.scatter(
                rows["attendance_days"],
                rows["efficiency"],
                s=28,
                color=colour,
                label=segment.replace("_", " "),
            )
            ax.scatter(rows.loc[flagged, "attendance_days"], rows.loc[flagged, "efficiency"], s=120,
                       facecolors="none", edgecolors="#d62728", linewidths=1.4)  # fmt: skip
        ax.axvline(cut["attendance_days"], color="#666", ls="--", lw=1)
        ax.axhline(cut["efficiency"], color="#666", ls="--", lw=1)
        ax.set_xlabel("attendance days")
        ax.set_ylabel("efficiency (verified jobs per attendance day)")
        ax.set_title(f"Attendance × efficiency, {period} (red ring: failed a quality gate)")
        ax.legend(fontsize=8)

    def by_city(figure: Figure) -> None:
        ax = figure.add_subplot()
        counts = latest.pivot_table(
            index="city", columns="tier", values="technician_id", aggfunc="count", fill_value=0
        )
        counts.plot.bar(ax=ax, stacked=True, colormap="viridis", rot=0)
        ax.set_ylabel("technicians")
        ax.set_title(f"Tiers per city, {period}")

    page.chart("tiers_scatter", scatter)
    page.chart("tiers_by_city", by_city, size=(9, 4))
    page.heading(f"Technicians, {period}")
    # One period, complete: the page's title says which, so the table leaves both columns out.
    shown = [c for c in COLUMNS if c not in ("period", "complete")]
    page.table(latest[shown].sort_values(["tier", "completed"], ascending=False))
    return page


def publish(table: pd.DataFrame, thresholds: dict, config: TierConfig, source: Path, out_dir: Path) -> Path:
    period = latest_complete_period(table)
    latest = table[table["period"] == period]
    partial = sorted(set(table.loc[~table["complete"], "period"]))
    fields = {
        "format": FORMAT,
        "thresholds": thresholds,
        "latest_period": period,
        "partial_periods": partial,  # reported, marked; they set no tier
        "counts": {
            "technicians": int(table["technician_id"].nunique()),
            "rows": len(table),
            "latest_tiers": {str(k): int(v) for k, v in latest["tier"].value_counts().sort_index().items()},
        },
    }
    return publish_report(
        out_dir, TABLE_FILE, table[COLUMNS], report(table, thresholds), fields, source, config
    )
