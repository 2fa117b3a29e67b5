"""The audiences job (`python -m training audiences`) on the large generated event logs of
benchmarks/training_scale.py: wall time and peak memory of the process (DuckDB included), by log size.

    python -m benchmarks.audiences [--events 10000000 50000000] [--quick] [--work DIR]

The generated catalog's categories are c00..c49, so the default tag file runs with `refill_due` on c00
and c01 (the shipped file names purifier_filter and cleaning, which that catalog lacks); every other
rule is the default one. Suggestions are the popularity fallback (no --model-dir).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks import load, training_scale
from models.audiences.audience_set import TAGS_FILE
from models.audiences.rules import DEFAULT_FILE
from models.versions import list_versions

QUICK_EVENTS = 200_000


def tag_file(directory: Path) -> Path:
    """The default rules, refill_due on two of the generated categories."""
    text = DEFAULT_FILE.read_text().replace('["purifier_filter", "cleaning"]', '["c00", "c01"]')
    path = directory / "tags.toml"
    path.write_text(text)
    return path


def measure(paths: dict[str, Path], tags: Path, out: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS in GiB of the job's process tree sampled every 0.2 s, rows published)."""
    command = [
        sys.executable, "-m", "training", "audiences", "--events", str(paths["events"]),
        "--items", str(paths["items"]), "--tags", str(tags), "--out", str(out),
    ]  # fmt: skip
    started, peak = time.perf_counter(), 0
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while process.poll() is None:
        peak = max(peak, sum(load.process_rss_bytes(process.pid)))
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"audiences job failed: {process.stderr.read() if process.stderr else ''}")
    rows = pq.read_metadata(out / list_versions(out)[-1] / TAGS_FILE).num_rows
    return seconds, peak / 2**30, rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audiences", description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[10_000_000, 50_000_000])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EVENTS:,} events only")
    parser.add_argument("--work", type=Path, help="where the logs go (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    results: list[dict] = []
    print(f"{'events':>12} {'users':>10} {'seconds':>9} {'peak GiB':>9} {'tag rows':>10}")
    for n_events in [QUICK_EVENTS] if args.quick else args.events:
        with tempfile.TemporaryDirectory(prefix="shifu-audiences-", dir=args.work) as tmp:
            paths = training_scale.generate(Path(tmp), n_events, args.seed)
            seconds, peak_gb, rows = measure(paths, tag_file(Path(tmp)), Path(tmp) / "audiences")
            users = max(n_events // training_scale.EVENTS_PER_USER, 1)
            print(f"{n_events:>12,} {users:>10,} {seconds:>9.1f} {peak_gb:>9.2f} {rows:>10,}", flush=True)
            results.append({"events": n_events, "seconds": seconds, "peak_gb": peak_gb, "rows": rows})
    return results


if __name__ == "__main__":
    main()
