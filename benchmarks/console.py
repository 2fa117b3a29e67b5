"""The operator console: p50 and p95 latency per page on the demo world (target: p95 under 300 ms),
and the README's screenshots.

The server runs on the demo model, tiers and supply-demand report, with a generated event log of an
experiment (tests/support/console_world.py) and one dispatch day answered; each page is read REQUESTS
times in turn over HTTP once the background build is done, plus the first (cold) read of each page.

    python -m benchmarks.console [--quick] [--demo .shifu] [--screenshots docs]
"""

from __future__ import annotations

import argparse
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np

from tests.support import headless_browser
from tests.support.console_server import PAGES, console_server

SHOTS = {"/": "console_overview.png", "/dispatch": "console_dispatch.png"}


def _get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as answer:
        answer.read()
    return 1000 * (time.perf_counter() - started)


def measure(base: str, requests: int) -> list[str]:
    cold = {path: _get(base + path) for path in PAGES}
    times: dict[str, list[float]] = {path: [] for path in PAGES}
    for _ in range(requests):
        for path in PAGES:
            times[path].append(_get(base + path))
    rows = ["| page | first read ms | p50 ms | p95 ms |", "|---|---|---|---|"]
    for path, taken in times.items():
        p50, p95 = np.percentile(taken, [50, 95])
        rows.append(f"| `{path}` | {cold[path]:.0f} | {p50:.1f} | {p95:.1f} |")
    return rows


def screenshots(base: str, out: Path) -> None:
    with headless_browser() as command:
        for path, name in SHOTS.items():
            shot = [*command, "--hide-scrollbars", "--window-size=1400,1100", f"--screenshot={out / name}"]
            subprocess.run([*shot, base + path], check=True, capture_output=True, timeout=120)  # fmt: skip
            print(f"wrote {out / name}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="50 reads of each page instead of 300")
    parser.add_argument("--demo", type=Path, default=Path(".shifu"), help="the demo state (make run's)")
    parser.add_argument("--screenshots", type=Path, help="also write the README's screenshots here")
    args = parser.parse_args(argv)
    demo = args.demo / "demo"
    world = {name: demo / name for name in ("items.csv", "job_log.csv", "dispatch_day.json")}
    with console_server(args.demo / "models", world) as running:
        assert running.console is not None
        base = f"http://127.0.0.1:{running.console.server_address[1]}"
        time.sleep(6)  # the background build of every page
        print("\n".join(measure(base, 50 if args.quick else 300)))
        if args.screenshots:
            screenshots(base, args.screenshots)


if __name__ == "__main__":
    main()
