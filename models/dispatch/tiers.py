"""The technician tier table that the tiering job publishes and dispatch reads."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from models import versions
from models.dispatch.problem import TOP_TIER

FORMAT = "shifu.tiers/1"
TABLE_FILE = "technicians.csv"


@dataclass(frozen=True)
class TierTable:
    version: str
    tiers: dict[str, int]  # technician id -> tier of that technician's latest period

    def tier_of(self, technician_id: str) -> int | None:
        return self.tiers.get(technician_id)


def load(version_dir: Path) -> TierTable:
    versions.read_manifest(version_dir, verify=True, expected_format=FORMAT)
    latest: dict[str, tuple[str, int]] = {}
    with (version_dir / TABLE_FILE).open(newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                technician, period, tier = row["technician_id"], row["period"], int(row["tier"])
            except (KeyError, TypeError, ValueError) as error:
                raise versions.VersionError(f"{version_dir / TABLE_FILE}:{line}: {error}") from error
            if not technician or not 1 <= tier <= TOP_TIER:
                raise versions.VersionError(
                    f"{version_dir / TABLE_FILE}:{line}: bad technician or tier {tier}"
                )
            if row.get("complete", "True") != "True":
                continue  # a period the log did not cover whole sets no tier
            if technician not in latest or period > latest[technician][0]:
                latest[technician] = (period, tier)
    return TierTable(version_dir.name, {t: tier for t, (_, tier) in latest.items()})
