"""The demo world's job log: months of jobs done by technicians with planted habits and planted
supply-demand anomalies, so that tiering and the supply-demand report have something true to find.

Habits (the technician's `habit` is written beside the log, in technicians.csv, for checking only):
- core: there most days, several verified jobs a day, good ratings;
- part_time_fast: there a few days a month, but many jobs on those days;
- full_time_slow: there most days, but few jobs a day;
- unreliable: middling attendance and speed, often unverified, low ratings, complaints.

Anomalies: a demand spike (a promotion) for installation in Chengdu, with orders never taken;
a demand drop for repair in Beijing while its technicians keep coming (idle capacity).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

# habit: (share, attendance probability per day, mean jobs per attended day, verified, on-time,
#         mean rating, complaint probability)
HABITS = {
    "core": (0.4, 0.85, 5.0, 0.98, 0.95, 4.85, 0.01),
    "part_time_fast": (0.2, 0.25, 7.0, 0.97, 0.93, 4.8, 0.01),
    "full_time_slow": (0.2, 0.85, 1.6, 0.96, 0.85, 4.7, 0.02),
    "unreliable": (0.2, 0.5, 2.8, 0.7, 0.6, 3.9, 0.12),
}
CATEGORIES = ["delivery", "installation", "repair", "cleaning"]
SHANGHAI_TIME = timedelta(hours=8)
SPIKE = ("chengdu", "installation", 40, 4)  # city, category, first day index, number of days
LULL = ("beijing", "repair", 60, 5)


@dataclass(frozen=True)
class JobLogSize:
    technicians: int = 150
    days: int = 92
    first_day: date = date(2026, 8, 1)


def _technicians(rng: np.random.Generator, cities: list[str], size: JobLogSize) -> pd.DataFrame:
    names = list(HABITS)
    habit = rng.choice(names, size=size.technicians, p=[HABITS[h][0] for h in names])
    city = rng.choice(cities, size=size.technicians)
    categories = [
        "|".join(sorted(rng.choice(CATEGORIES, size=int(rng.integers(1, 4)), replace=False).tolist()))
        for _ in range(size.technicians)
    ]
    return pd.DataFrame(
        {
            "technician_id": [f"t{t:04d}" for t in range(size.technicians)],
            "city": city,
            "categories": categories,
            "habit": habit,
        }
    )


def _during(anomaly: tuple[str, str, int, int], cell: tuple[str, str], day: int) -> bool:
    return cell == anomaly[:2] and anomaly[2] <= day < anomaly[2] + anomaly[3]


def _work(
    rng: np.random.Generator, technician: str, habit: tuple, created: datetime, window_start: datetime
) -> dict:
    """The lifecycle of a job a technician takes, by the technician's habit."""
    _, _, _, verified, on_time, rating, complaint = habit
    accepted = created + timedelta(minutes=float(rng.uniform(2, 120)))
    late = rng.random() > on_time
    completed = window_start + timedelta(minutes=float(rng.uniform(30, 110) + (90 if late else 0)))
    done = rng.random() > 0.02  # a few jobs are taken but never completed
    return {
        "technician_id": technician,
        "accepted_at": accepted,
        "completed_at": completed if done else None,
        "verified": bool(done and rng.random() < verified),
        "rating": int(np.clip(round(rng.normal(rating, 0.4)), 1, 5)) if done and rng.random() < 0.6 else None,
        "complaint": bool(done and rng.random() < complaint),
    }


def _stamp(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def generate_job_log(
    rng: np.random.Generator, cities: list[str], size: JobLogSize | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(job log, technicians with their planted habit).

    Demand is exogenous: each city × category gets Poisson jobs a day around a base that keeps its
    technicians about 80% busy. Each present technician can do a random number of jobs that day around
    their habit's pace; jobs go to present technicians with room, in proportion to the room left, and
    jobs that find no room are never taken.
    """
    size = size or JobLogSize()
    technicians = _technicians(rng, cities, size)
    habit = [HABITS[h] for h in technicians["habit"]]
    serves = [c.split("|") for c in technicians["categories"]]
    cells = sorted({(city, c) for city, cats in zip(technicians["city"], serves, strict=True) for c in cats})
    base = {
        cell: 0.8
        * sum(
            h[1] * h[2] / len(cats)
            for h, city, cats in zip(habit, technicians["city"], serves, strict=True)
            if city == cell[0] and cell[1] in cats
        )
        for cell in cells
    }
    able = {
        cell: np.array(
            [
                city == cell[0] and cell[1] in cats
                for city, cats in zip(technicians["city"], serves, strict=True)
            ]
        )
        for cell in cells
    }
    rows = []
    start = (
        datetime(size.first_day.year, size.first_day.month, size.first_day.day, tzinfo=UTC) - SHANGHAI_TIME
    )
    for d in range(size.days):
        day = start + timedelta(days=d)
        present = rng.random(len(habit)) < np.array([h[1] for h in habit])
        room = np.where(present, np.maximum(1, rng.poisson([h[2] for h in habit])), 0).astype(float)
        todays = []
        for cell in cells:
            factor = 3.0 if _during(SPIKE, cell, d) else 0.15 if _during(LULL, cell, d) else 1.0
            todays += [cell] * int(rng.poisson(base[cell] * factor))
        # Orders arrive through the day in no particular order of city or category.
        for c in rng.permutation(len(todays)):
            cell = todays[c]
            window_start = day + timedelta(hours=int(rng.choice([8, 10, 12, 14, 16])))
            created = window_start - timedelta(hours=float(rng.uniform(4, 48)))
            job = {
                "city": cell[0],
                "category": cell[1],
                "created_at": created,
                "time_window_start": window_start,
                "verified": False,
            }
            candidates = np.flatnonzero(able[cell] & (room > 0))
            if candidates.size:
                t = int(rng.choice(candidates, p=room[candidates] / room[candidates].sum()))
                room[t] -= 1
                job.update(_work(rng, technicians.at[t, "technician_id"], habit[t], created, window_start))
            else:
                job["technician_id"] = ""
            rows.append(job)
    log = pd.DataFrame(rows)
    log.insert(0, "job_id", [f"job{i:07d}" for i in range(len(log))])
    log["required_skills"] = log["category"].map(
        {
            "delivery": "delivery",
            "installation": "furniture_install",
            "repair": "appliance_repair",
            "cleaning": "cleaning",
        }
    )
    log["time_window_end"] = log["time_window_start"] + timedelta(hours=2)
    for column in ("created_at", "accepted_at", "completed_at", "time_window_start", "time_window_end"):
        log[column] = log[column].map(lambda v: "" if pd.isna(v) else _stamp(v))
    log["rating"] = log["rating"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    log["complaint"] = log["complaint"].map(lambda v: "" if pd.isna(v) else str(bool(v)).lower())
    log["verified"] = log["verified"].map(lambda v: str(bool(v)).lower())
    columns = [
        "job_id", "technician_id", "city", "category", "required_skills", "created_at", "accepted_at",
        "completed_at", "time_window_start", "time_window_end", "verified", "rating", "complaint",
    ]  # fmt: skip
    return log[columns].fillna(""), technicians
