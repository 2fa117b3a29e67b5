"""The training job on large generated event logs: wall time and peak memory (the whole process tree,
engine included), by log size and engine.

    python -m benchmarks.training_scale [--events 10000000 50000000] [--engine duckdb]
                                        [--baseline-tree DIR] [--work DIR]

The log is written as CSV partitions (a folder, as the service writes its log). Users favour two of 50
categories and, within them, popular items; a third of the events carry a recommendation id. The models
are kept light (5 ALS iterations, 3 LightFM epochs) so that the time measures the data path; the
catalog is 5,000 items. `--baseline-tree` runs the same job from another checkout (e.g. a `git worktree`
of the commit before DuckDB) for "today's path".
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from benchmarks import load

ROOT = Path(__file__).resolve().parent.parent
N_ITEMS = 5_000
N_CATEGORIES = 50
EVENTS_PER_USER = 25
PARTITION_EVENTS = 2_500_000
SCENES = np.array(["browse", "new_home", "after_order", "service_reminder", "repair"])
TOUCHPOINTS = np.array(["home_feed", "category_page", "product_page", "cart", "order_complete"])
KINDS = np.array(["impression", "view", "click", "cart", "order"])
KIND_SHARES = [0.40, 0.30, 0.15, 0.08, 0.07]
LIGHT_MODELS = ("--als-iterations", "5", "--lightfm-epochs", "3", "--force-promote")


def generate(out: Path, n_events: int, seed: int) -> dict[str, Path]:
    """items.csv, users.csv and events/part-NNN.csv under `out`."""
    rng = np.random.default_rng(seed)
    category = np.sort(rng.integers(0, N_CATEGORIES, N_ITEMS))
    items = pa.table(
        {
            "item_id": [f"i{i:05d}" for i in range(N_ITEMS)],
            "title": [f"item {i}" for i in range(N_ITEMS)],
            "category": [f"c{c:02d}" for c in category],
            "price": np.round(np.exp(rng.normal(5, 1, N_ITEMS)), 2),
        }
    )
    starts = np.searchsorted(category, np.arange(N_CATEGORIES))
    sizes = np.diff(np.append(starts, N_ITEMS))
    n_users = max(n_events // EVENTS_PER_USER, 1)
    users = pa.table(
        {
            "user_id": [f"u{u:07d}" for u in range(n_users)],
            "city": rng.choice(["shanghai", "beijing", "hangzhou", "shenzhen"], n_users),
        }
    )
    favourites = rng.integers(0, N_CATEGORIES, (n_users, 2))
    (out / "events").mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(items, out / "items.csv")
    pacsv.write_csv(users, out / "users.csv")
    written, part = 0, 0
    while written < n_events:
        n = min(PARTITION_EVENTS, n_events - written)
        user = rng.integers(0, n_users, n)
        chosen = favourites[user, rng.integers(0, 2, n)]
        wander = rng.random(n) < 0.1
        chosen[wander] = rng.integers(0, N_CATEGORIES, int(wander.sum()))
        rank = np.minimum(rng.zipf(1.3, n) - 1, sizes[chosen] - 1)
        item = starts[chosen] + rank
        recommended = rng.random(n) < 0.33
        table = pa.table(
            {
                "timestamp": 1_790_000_000 + rng.integers(0, 90 * 86400, n),
                "user_id": np.char.add("u", np.char.zfill(user.astype(str), 7)),
                "item_id": np.char.add("i", np.char.zfill(item.astype(str), 5)),
                "event_type": KINDS[rng.choice(len(KINDS), n, p=KIND_SHARES)],
                "touchpoint": TOUCHPOINTS[rng.integers(0, len(TOUCHPOINTS), n)],
                "scene": SCENES[rng.integers(0, len(SCENES), n)],
                "recommendation_id": np.where(
                    recommended, np.char.add("r", rng.integers(0, n // 20 + 1, n).astype(str)), ""
                ),
            }
        )
        pacsv.write_csv(table, out / "events" / f"part-{part:03d}.csv")
        written, part = written + n, part + 1
    return {"events": out / "events", "items": out / "items.csv", "users": out / "users.csv"}


@dataclass(frozen=True)
class Run:
    label: str
    seconds: float
    peak_gb: float
    ok: bool
    note: str
    peak_during: str

    def row(self, n_events: int) -> str:
        status = "" if self.ok else f" ({self.note})"
        return (
            f"{n_events:>12,} {self.label:<28} {self.seconds:>9.0f} {self.peak_gb:>12.2f}{status}\n"
            f"{'':>12} peak during: {self.peak_during}"
        )


def run_job(
    label: str, tree: Path, paths: dict[str, Path], out: Path, extra: tuple[str, ...], limit_s: float
) -> Run:
    """The training job from `tree` as a subprocess, its process tree's memory sampled every 0.2 s, with
    the job's log line current at the peak (which step needs the memory)."""
    command = [
        sys.executable, "-m", "training", "train", "--events", str(paths["events"]),
        "--items", str(paths["items"]), "--users", str(paths["users"]), "--out", str(out), *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree)}
    log = out.with_suffix(".log")
    started, peak, peak_during = time.perf_counter(), 0, ""
    with open(log, "w") as sink:
        process = subprocess.Popen(command, cwd=tree, stdout=sink, stderr=subprocess.STDOUT, env=env)
        while process.poll() is None:
            rss = sum(load.process_rss_bytes(process.pid))
            if rss > peak:
                peak, peak_during = rss, _last_line(log)
            if time.perf_counter() - started > limit_s:
                process.kill()
                process.wait()
                seconds = time.perf_counter() - started
                return Run(label, seconds, peak / 2**30, False, f"stopped at {limit_s:.0f} s", peak_during)
            time.sleep(0.2)
    seconds = time.perf_counter() - started
    note = f"exit {process.returncode}: {_last_line(log)}"
    if process.returncode != 0:  # the log outlives the temporary folder, beside it
        kept = log.parent.parent / f"failed-{label.replace(' ', '').replace(',', '-')}-{int(time.time())}.log"
        shutil.copy(log, kept)
        note += f" (log: {kept})"
    return Run(label, seconds, peak / 2**30, process.returncode == 0, note, peak_during)


def _last_line(log: Path) -> str:
    lines = log.read_text().strip().splitlines()
    return lines[-1][:160] if lines else "(start)"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.training_scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, nargs="+", default=[10_000_000, 50_000_000])
    parser.add_argument(
        "--engine", nargs="*", default=["duckdb"], choices=["duckdb", "spark"], help="none: the baseline only"
    )
    parser.add_argument("--baseline-tree", type=Path, help="a checkout of today's path, run beside")
    parser.add_argument(
        "--baseline-max-events", type=int, default=10_000_000, help="larger logs than this skip the baseline"
    )
    parser.add_argument(
        "--limit-s", type=float, default=7200.0, help="a job running longer is stopped (50M, DuckDB: 4,331 s)"
    )
    parser.add_argument("--work", type=Path, help="where to write the logs (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    results: list[dict] = []
    print(f"{'events':>12} {'job':<28} {'seconds':>9} {'peak GB':>12}")
    for n_events in args.events:
        with tempfile.TemporaryDirectory(prefix="shifu-scale-", dir=args.work) as tmp:
            started = time.perf_counter()
            paths = generate(Path(tmp), n_events, args.seed)
            print(
                f"{n_events:>12,} {'(log generated)':<28} {time.perf_counter() - started:>9.0f}", flush=True
            )
            jobs: list[tuple[str, Path, tuple[str, ...]]] = [
                (f"Shifu, {e}", ROOT, ("--engine", e)) for e in args.engine
            ]
            if args.baseline_tree and n_events <= args.baseline_max_events:
                jobs.append(("before (pandas)", args.baseline_tree, ()))
            for label, tree, extra in jobs:
                out = Path(tmp) / f"models-{len(results)}"
                run = run_job(label, tree, paths, out, (*extra, *LIGHT_MODELS), args.limit_s)
                print(run.row(n_events), flush=True)
                results.append({"events": n_events, **vars(run)})
    return results


if __name__ == "__main__":
    main()
