"""Experiments: what one costs a Recommend call, how long the analysis takes, and how often it is right.

1. overhead: Recommend p50/p99 over gRPC at concurrency 1 on the demo model, home_feed inside an
   experiment against the same server with the experiment on another touchpoint, alternating twice;
2. analysis: `python -m training experiments` over a generated log of N events in the service's format;
3. errors: A/A experiments through a real two-process server (the false-winner rate), and experiments
   whose candidate truly gets `--lift` times the clicks (the power), with benchmarks.experiment_world.

    python -m benchmarks.experiments [--quick] [--model-dir DIR] [--events 10000000] [--lift 1.6]

Users' click propensities are Beta(2, 18) (mean 10%); --lift multiplies the candidate's. Without
`horizon_days` the analysis's test is always valid (mSPRT), tuned here at the users each arm gets.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import load
from benchmarks.experiment_world import World, experiments_toml, simulate
from models.event_format import EXPOSURES, Event, Exposure, partition
from service.pb.shifu.v1 import recommend_pb2
from training import demo
from training.__main__ import main as training_main

DAY = 86400.0
T0 = 1_790_000_000.0


def overhead(model_dir: Path, directory: Path, calls: int) -> list[str]:
    """Rows of p50/p99 with and without an experiment on the asked touchpoint, alternating twice."""
    path = directory / "overhead.toml"
    path.write_text(experiments_toml({"bench": "elsewhere"}))
    requests = [
        recommend_pb2.RecommendRequest(user_id=f"u{n:05d}", touchpoint="home_feed", limit=10)
        for n in range(500)
    ]
    rows = []
    extra = ("--experiments", str(path), "--state-dir", str(directory / "state"))
    with load.service_process(model_dir, 1, extra) as port:
        for round_ in range(2):
            for label, touchpoint in (
                ("no experiment", "elsewhere"),
                ("home_feed in an experiment", "home_feed"),
            ):
                path.write_text(experiments_toml({"bench": touchpoint}))
                time.sleep(1.5)  # re-read within a second
                result = load.run_load(port, requests, 1, calls)
                rows.append(
                    f"{label + f' (round {round_ + 1})':<36}{result.p50_ms:>9.2f}{result.p99_ms:>9.2f}"
                )
    return rows


def _answer(n: int, stamp: float, user: str, items: np.ndarray, clicked: bool) -> list[Event]:
    """The events of answer `n`: an impression per item, and a click on the first if `clicked`."""
    rid = f"r{n}"
    events = [
        Event(f"{rid}-{k}", stamp, user, f"i{item}", "impression", "home_feed", "", None, rid)
        for k, item in enumerate(items)
    ]
    if clicked:
        events.append(Event(f"{rid}-c", stamp + 5, user, f"i{items[0]}", "click", "home_feed", "", None, rid))
    return events


def write_log(directory: Path, events: int, seed: int = 0) -> int:
    """A 14-day log of about `events` events: answers of 5 items inside an experiment, an impression
    per item and clicks on some, the rest organic views. Returns the exposures written."""
    rng = np.random.default_rng(seed)
    answers = events // 10
    users = max(answers // 8, 2)
    user = rng.integers(users, size=answers)
    arm = np.where(user % 2 == 0, "control", "candidate")
    stamp = T0 + rng.uniform(0, 14 * DAY, size=answers)
    items = rng.integers(5000, size=(answers, 5))
    clicked = rng.random(answers) < np.where(arm == "candidate", 0.12, 0.10)
    files: dict[Path, list[str]] = {}
    for n in range(answers):
        uid, shown = f"u{user[n]}", items[n]
        exposure = Exposure(
            f"r{n}",
            float(stamp[n]),
            uid,
            "home_feed",
            "feed",
            str(arm[n]),
            "v1",
            tuple(f"i{i}" for i in shown),
        )
        files.setdefault(partition(directory, exposure.day(), "w0", EXPOSURES), []).append(exposure.line())
        lines = files.setdefault(partition(directory, exposure.day(), "w0"), [])
        lines += [e.line() for e in _answer(n, exposure.timestamp, uid, shown, bool(clicked[n]))]
    organic = max(events - answers * 5 - int(clicked.sum()), 0)
    when = T0 + rng.uniform(0, 14 * DAY, size=organic)
    who, what = rng.integers(users, size=organic), rng.integers(5000, size=organic)
    for n in range(organic):
        event = Event(f"o{n}", float(when[n]), f"u{who[n]}", f"i{what[n]}", "view")
        files.setdefault(partition(directory, event.day(), "w0"), []).append(event.line())
    for path, lines in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(lines))
    return answers


def analysis(directory: Path, events: int) -> str:
    """Seconds to write and to analyse a generated log of `events` events."""
    began = time.perf_counter()
    exposures = write_log(directory / "log", events)
    written = time.perf_counter() - began
    path = directory / "feed.toml"
    path.write_text(experiments_toml({"feed": "home_feed"}))
    began = time.perf_counter()
    argv = [
        "experiments",
        "--events",
        str(directory / "log"),
        "--experiments",
        str(path),
        "--out",
        str(directory / "out"),
    ]
    assert training_main(argv) == 0
    analysed = time.perf_counter() - began
    return (
        f"{events:>11,} events, {exposures:>9,} exposures: written {written:.1f} s, analysed {analysed:.1f} s"
    )


@dataclass(frozen=True)
class Run:
    """Experiments of one kind: `count` of them, each on a touchpoint of its own."""

    label: str
    count: int
    users: int
    lift: float  # 1: A/A

    @property
    def tag(self) -> str:
        return "aa" if self.lift == 1.0 else "lift"


def error_rates(model_dir: Path, directory: Path, runs: list[Run]) -> list[str]:
    """How often each run names a winner, and the candidate, through a two-process server."""
    events = directory / "state" / "events"
    path = directory / "errors.toml"
    path.write_text(experiments_toml({"warmup": "warmup"}))
    extra = ("--experiments", str(path), "--state-dir", str(directory / "state"), "--events-dir", str(events))
    rows = []
    with load.service_process(model_dir, 2, extra) as port:
        for run in runs:
            touchpoints = [f"{run.tag}{n:03d}" for n in range(run.count)]
            text = experiments_toml({f"e{tp}": tp for tp in touchpoints}, min_users_per_arm=run.users // 2)
            path.write_text(text)
            time.sleep(1.5)  # re-read within a second
            simulate(port, World(range(run.users), lift=run.lift, prefix=run.tag, seed=3), touchpoints)
            winners = _winners(events, directory / run.tag, text)
            named, candidate = sum(w is not None for w in winners), winners.count("candidate")
            sizes = f"{run.count:>4} experiments x {run.users} users x 3 visits"
            rows.append(
                f"{run.label:<10}{sizes}: a winner in {named / run.count:.0%}, the candidate in {candidate}"
            )
    return rows


def _winners(events: Path, out: Path, text: str) -> list[str | None]:
    """`python -m training experiments` over the log: each experiment's winner (None: no winner)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "judged.toml").write_text(text)
    argv = ["experiments", "--events", str(events), "--experiments", str(out / "judged.toml")]
    assert training_main([*argv, "--out", str(out)]) == 0
    result = json.loads((out / "experiments.json").read_text())
    return [e["decision"]["winner"] for e in result["experiments"]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.experiments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="1M events, fewer calls and users")
    parser.add_argument(
        "--model-dir", type=Path, help="a trained model folder (default: train the demo world)"
    )
    parser.add_argument(
        "--events", type=int, help="events of the generated log (default 10M, 1M with --quick)"
    )
    parser.add_argument("--lift", type=float, default=1.6)
    args = parser.parse_args(argv)
    events = args.events or (1_000_000 if args.quick else 10_000_000)
    with tempfile.TemporaryDirectory(prefix="shifu-experiments-") as tmp:
        directory = Path(tmp)
        model_dir = args.model_dir
        if model_dir is None:
            paths = demo.generate(directory / "world", seed=7)
            model_dir = directory / "models"
            load.run_training(paths["events.csv"], paths["items.csv"], model_dir, paths["users.csv"])
        print(f"{'Recommend over gRPC, concurrency 1':<36}{'p50 ms':>9}{'p99 ms':>9}")
        for row in overhead(model_dir, directory, 1000 if args.quick else 3000):
            print(row)
        print(analysis(directory, events))
        users = 100 if args.quick else 200
        runs = [Run("A/A", 100, users, 1.0), Run(f"lift x{args.lift:g}", 20, 3 * users, args.lift)]
        for row in error_rates(model_dir, directory, runs):
            print(row)


if __name__ == "__main__":
    main()
