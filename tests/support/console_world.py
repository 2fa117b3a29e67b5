"""A small world for the console's pages: an event log with exposures of one experiment (written as the
service writes them, models/event_format.py), its experiments file, and an audience set published as
the audiences job publishes one (tags.parquet with exactly user_id, tag, category, since,
suggested_item_ids). Seeded: the same call writes the same files."""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from models import versions
from models.audiences import audience_set
from models.event_format import EXPOSURES, Event, Exposure, partition
from models.experiments import unit_hash
from training import audiences

START = 1_790_000_000.0  # Unix seconds, a day in 2026
TOUCHPOINTS = ("home_feed", "product_page", "cart_page")
SCENES = ("new_home", "renovation")
EXPERIMENT = "feed_ranker"
EXPERIMENTS_TOML = (
    f'[experiment.{EXPERIMENT}]\ntouchpoint = "home_feed"\n'
    '[[experiment.feed_ranker.arms]]\nname = "control"\nweight = 1\n'
    '[[experiment.feed_ranker.arms]]\nname = "candidate"\nweight = 1\n'
)


def write_log(events_dir: Path, item_ids: list[str], users: int = 300, seed: int = 0) -> int:
    """Visits of `users` users to every touchpoint over three days; returns the events written."""
    rng = np.random.default_rng(seed)
    lines: dict[Path, list[str]] = {}
    written = 0
    for u in range(users):
        user = f"u{u:05d}"
        arm = "candidate" if unit_hash(EXPERIMENT, user) < 0.5 else "control"
        for visit in range(3):
            for touchpoint in TOUCHPOINTS:
                at = START + visit * 86_400 + float(rng.uniform(0, 80_000))
                shown = [str(i) for i in rng.choice(item_ids, size=4, replace=False)]
                rid = str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | u))
                scene = SCENES[u % 2]
                if touchpoint == "home_feed":
                    exposure = Exposure(rid, at, user, touchpoint, EXPERIMENT, arm, "v1", tuple(shown))
                    lines.setdefault(partition(events_dir, exposure.day(), "w9", EXPOSURES), []).append(
                        exposure.line()
                    )
                ctr = 0.12 * (1.5 if arm == "candidate" and touchpoint == "home_feed" else 1.0)
                for k, item in enumerate(shown):
                    kinds = ["impression"]
                    if rng.random() < ctr / (k + 1):
                        kinds += ["click"] + (["cart"] if rng.random() < 0.4 else [])
                        kinds += ["order"] if "cart" in kinds and rng.random() < 0.5 else []
                    for n, kind in enumerate(kinds):
                        value = float(rng.integers(50, 900)) if kind == "order" else None
                        event = Event(
                            f"{rid}-{k}-{n}", at + 5 * n, user, item, kind, touchpoint, scene, value, rid
                        )
                        lines.setdefault(partition(events_dir, event.day(), "w9"), []).append(event.line())
                        written += 1
    for path, text in lines.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(text))
    return written


def write_audiences(root: Path, item_ids: list[str], users: int = 300, seed: int = 0) -> Path:
    """One version of an audience set: users in a few overlapping tags."""
    rng = np.random.default_rng(seed)
    tags = {"new_mover": "furniture", "lamp_lover": "lighting", "lapsed": None, "big_spender": None}
    rows: dict[str, list] = {name: [] for name in audiences.SCHEMA.names}
    for u in range(users):
        for tag, category in tags.items():
            if rng.random() < 0.35:
                rows["user_id"].append(f"u{u:05d}")
                rows["tag"].append(tag)
                rows["category"].append(category)
                day = datetime.datetime.fromtimestamp(
                    START + float(rng.integers(0, 6)) * 86_400, datetime.UTC
                )
                rows["since"].append(day)
                rows["suggested_item_ids"].append(
                    [str(i) for i in rng.choice(item_ids, size=3, replace=False)]
                )

    def write(directory: Path) -> dict[str, object]:
        pq.write_table(pa.Table.from_pydict(rows, schema=audiences.SCHEMA), directory / "tags.parquet")
        return {"format": audience_set.FORMAT, "counts": {"rows": len(rows["user_id"])}}

    return versions.publish(root, write)
