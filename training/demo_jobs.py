"""The demo world's technicians: one roster, with planted habits, behind both the job log (months of
jobs, with planted supply-demand anomalies) and the day of dispatch in Shanghai, so that the tiers
computed from the log are those of the day's technicians.

Habits (the technician's `habit` is written beside the log, in technician_habits.csv, for checking only):
- core: there most days, several verified jobs a day, good ratings;
- part_time_fast: there a few days a month, but many jobs on those days;
- full_time_slow: there most days, but few jobs a day;
- unreliable: middling attendance and speed, often unverified, low ratings, complaints.

Anomalies: a demand spike (a promotion) for installation in Chengdu, with orders never taken;
a demand drop for repair in Beijing while its technicians keep coming (idle capacity).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import numpy as np
import pandas as pd

CITIES = {
    "shanghai": (31.2304, 121.4737),
    "beijing": (39.9042, 116.4074),
    "guangzhou": (23.1291, 113.2644),
    "chengdu": (30.5728, 104.0668),
    "hangzhou": (30.2741, 120.1551),
}
DAY_CITY = "shanghai"
# habit: (share, attendance probability per day, mean jobs per attended day, verified, on-time,
#         mean rating, complaint probability)
HABITS = {
    "core": (0.4, 0.85, 5.0, 0.98, 0.95, 4.85, 0.01),
    "part_time_fast": (0.2, 0.25, 7.0, 0.97, 0.93, 4.8, 0.01),
    "full_time_slow": (0.2, 0.85, 1.6, 0.96, 0.85, 4.7, 0.02),
    "unreliable": (0.2, 0.5, 2.8, 0.7, 0.6, 3.9, 0.12),
}
# The job log's categories and the skill each asks for (a technician serving one has its skill).
CATEGORY_SKILL = {
    "delivery": "delivery",
    "installation": "furniture_install",
    "repair": "appliance_repair",
    "cleaning": "cleaning",
}
CATEGORIES = list(CATEGORY_SKILL)
SKILLS = [
    "delivery",
    "furniture_install",
    "lamp_install",
    "purifier_install",
    "appliance_repair",
    "cleaning",
    "removal",
    "carpentry",
]
SHANGHAI_TIME = timedelta(hours=8)
SPIKE = ("chengdu", "installation", 40, 4)  # city, category, first day index, number of days
LULL = ("beijing", "repair", 60, 5)
# The day plan's solve budget: ROUTE keeps improving the routes until then, and on the demo's day
# (300 jobs, 80 technicians) a few seconds is what it takes to settle.
DAY_TIME_LIMIT_MS = 5000


@dataclass(frozen=True)
class JobLogSize:
    days: int = 92
    first_day: date = date(2026, 8, 1)


class DaySize(Protocol):
    """How big the technicians' world is (the demo's DemoSize is one)."""

    @property
    def technicians(self) -> int: ...

    @property
    def jobs(self) -> int: ...

    @property
    def job_log_technicians(self) -> int: ...


def technician_roster(rng: np.random.Generator, cities: Sequence[str]) -> pd.DataFrame:
    """One technician per entry of `cities` (their city), ids t0000, t0001, ... unique across cities,
    each with the job-log categories they serve and their planted habit."""
    names = list(HABITS)
    habit = rng.choice(names, size=len(cities), p=[HABITS[h][0] for h in names])
    categories = [
        "|".join(sorted(rng.choice(CATEGORIES, size=int(rng.integers(1, 4)), replace=False).tolist()))
        for _ in cities
    ]
    return pd.DataFrame(
        {
            "technician_id": [f"t{t:04d}" for t in range(len(cities))],
            "city": list(cities),
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


def _cells(technicians: pd.DataFrame) -> tuple[dict, dict]:
    """Per city × category: the base demand that keeps its technicians about 80% busy, and who serves it."""
    habit = [HABITS[h] for h in technicians["habit"]]
    serves = [c.split("|") for c in technicians["categories"]]
    cities = technicians["city"].tolist()
    cells = sorted({(city, c) for city, cats in zip(cities, serves, strict=True) for c in cats})
    able = {
        cell: np.array(
            [city == cell[0] and cell[1] in cats for city, cats in zip(cities, serves, strict=True)]
        )
        for cell in cells
    }
    base = {
        cell: 0.8
        * sum(h[1] * h[2] / len(cats) for h, cats, ok in zip(habit, serves, able[cell], strict=True) if ok)
        for cell in cells
    }
    return base, able


def generate_job_log(
    rng: np.random.Generator, technicians: pd.DataFrame, size: JobLogSize | None = None
) -> pd.DataFrame:
    """The job log of the roster's technicians (see `technician_roster`).

    Demand is exogenous: each city × category gets Poisson jobs a day around a base that keeps its
    technicians about 80% busy. Each present technician can do a random number of jobs that day around
    their habit's pace; jobs go to present technicians with room, in proportion to the room left, and
    jobs that find no room are never taken.
    """
    size = size or JobLogSize()
    habit = [HABITS[h] for h in technicians["habit"]]
    base, able = _cells(technicians)
    rows = []
    start = (
        datetime(size.first_day.year, size.first_day.month, size.first_day.day, tzinfo=UTC) - SHANGHAI_TIME
    )
    for d in range(size.days):
        day = start + timedelta(days=d)
        present = rng.random(len(habit)) < np.array([h[1] for h in habit])
        room = np.where(present, np.maximum(1, rng.poisson([h[2] for h in habit])), 0).astype(float)
        todays = []
        for cell in base:
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
    return _as_written(pd.DataFrame(rows))


def _as_written(log: pd.DataFrame) -> pd.DataFrame:
    """The log in the job-log format: ids, required skills, the window's end, text columns."""
    log.insert(0, "job_id", [f"job{i:07d}" for i in range(len(log))])
    log["required_skills"] = log["category"].map(CATEGORY_SKILL)
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
    return log[columns].fillna("")


def dispatch_day(
    rng: np.random.Generator, size: DaySize, with_tiers: bool = False, technicians: pd.DataFrame | None = None
) -> dict:
    """A day of open jobs and technicians in Shanghai, as an AssignJobsRequest in protobuf's JSON mapping,
    in ROUTE mode: the day plan a dispatcher asks for.

    The technicians are `technicians` (the job log's Shanghai roster: same ids, and the skills of the
    categories they serve there, plus some of the skills the log has no category for), or without it
    `size.technicians` new ones. Without `with_tiers` their tier is left unset, so that the service uses
    the tiers it computed from the job log."""
    if technicians is None:
        technicians = technician_roster(rng, [DAY_CITY] * size.technicians)
    lat0, lng0 = CITIES[DAY_CITY]
    day = datetime(2026, 11, 2, tzinfo=UTC) - SHANGHAI_TIME  # midnight, Shanghai time

    def point() -> dict:
        r, a = 14 * math.sqrt(rng.random()), rng.random() * 2 * math.pi
        return {
            "lat": round(lat0 + r * math.sin(a) / 111.0, 5),
            "lng": round(lng0 + r * math.cos(a) / (111.0 * math.cos(math.radians(lat0))), 5),
        }

    def stamp(hours: float) -> str:
        return _stamp(day + timedelta(hours=hours))

    extra = [s for s in SKILLS if s not in CATEGORY_SKILL.values()]
    day_technicians = []
    for technician, categories in zip(technicians["technician_id"], technicians["categories"], strict=True):
        skills = {CATEGORY_SKILL[c] for c in categories.split("|")}
        skills |= set(rng.choice(extra, size=int(rng.integers(0, 3)), replace=False).tolist())
        first = float(rng.choice([8, 9, 10]))
        day_technicians.append(
            {
                "technicianId": technician,
                "location": point(),
                "skills": sorted(skills),
                "tier": int(rng.choice([1, 2, 3])) if with_tiers else 0,
                "maxJobs": int(rng.integers(3, 7)),
                "shift": {"start": stamp(first), "end": stamp(first + 9)},
                "vehicleCapacity": float(rng.choice([2, 4, 6, 10])),
            }
        )
    jobs = []
    for j in range(size.jobs):
        skill = SKILLS[rng.choice(len(SKILLS), p=[0.3, 0.2, 0.12, 0.1, 0.1, 0.08, 0.06, 0.04])]
        required = [skill] if rng.random() < 0.85 else sorted({skill, "carpentry"})
        start = float(rng.choice([8, 10, 12, 14, 16, 18]))
        jobs.append(
            {
                "jobId": f"j{j:04d}",
                "location": point(),
                "requiredSkills": required,
                "durationMinutes": int(rng.choice([30, 45, 60, 90, 120])),
                "timeWindow": {"start": stamp(start), "end": stamp(start + 2)},
                "priority": int(rng.choice(4, p=[0.5, 0.3, 0.15, 0.05])),
                "demand": float(rng.choice([0, 0.5, 1, 2, 3])),
            }
        )
    return {
        "jobs": jobs,
        "technicians": day_technicians,
        "options": {"mode": "ASSIGN_MODE_ROUTE", "timeLimitMs": DAY_TIME_LIMIT_MS},
    }


def technician_world(seed: int, size: DaySize) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """(technicians with their planted habit, the dispatch day, the job log). The day's technicians are
    the job log's Shanghai technicians (t0000, ... up to `size.technicians`; the others spread evenly
    over the other cities), so the tiers computed from the log are their own. Drawn from a stream
    of their own, so that they do not change with the storefront's size."""
    if not 0 < size.technicians <= size.job_log_technicians:
        raise ValueError("need 0 < technicians <= job_log_technicians (the day's are the log's in Shanghai)")
    rng = np.random.default_rng([seed, 1])
    others = [c for c in CITIES if c != DAY_CITY]
    cities = [DAY_CITY] * size.technicians
    cities += rng.choice(others, size=size.job_log_technicians - size.technicians).tolist()
    roster = technician_roster(rng, cities)
    day = dispatch_day(rng, size, technicians=roster[roster["city"] == DAY_CITY])
    return roster, day, generate_job_log(rng, roster)
