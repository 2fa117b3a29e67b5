"""The figures of docs/dispatch.md, regenerated from a fresh demo (`make docs`, that is
`python -m training.docs_figures --out docs`).

docs/tiers_scatter.png, docs/tiers_by_city.png and docs/supply_demand.png are drawn exactly as the
tiers and supply-demand reports draw them, with their default parameters, from the job log that
`python -m training demo` writes (the same seed gives the same log whatever the storefront's size).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

from training import supply_demand, tiers
from training.demo import DemoSize
from training.demo_jobs import technician_world
from training.readers import read_jobs

FIGURES = ("tiers_scatter", "tiers_by_city", "supply_demand")


def as_read(log: pd.DataFrame) -> pd.DataFrame:
    """A job log as written (`generate_job_log`) read back as the reports get it from the file."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "job_log.csv"
        log.to_csv(path, index=False)
        jobs, _ = read_jobs(path)
    return jobs


def figures(jobs: pd.DataFrame) -> dict[str, bytes]:
    """The docs' charts (PNG) of this job log, by name."""
    table, thresholds = tiers.compute(jobs, tiers.TierConfig())
    charts = dict(tiers.report(table, thresholds).charts)
    daily = supply_demand.daily_table(jobs, supply_demand.SupplyDemandConfig())
    charts.update(supply_demand.report(daily).charts)
    return {name: charts[name] for name in FIGURES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.docs_figures", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--seed", type=int, default=7, help="the demo's seed (`training demo --seed`)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    _, _, log = technician_world(args.seed, DemoSize())
    for name, png in figures(as_read(log)).items():
        path = args.out / f"{name}.png"
        path.write_bytes(png)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
