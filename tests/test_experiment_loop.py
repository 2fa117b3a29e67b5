"""The experiment loop end to end: a real two-process server answers simulated users from their arms
and records exposures, the users report impressions and clicks, and `python -m training experiments`
judges the log: the arm that truly gets more clicks wins, A/A experiments rarely name a winner, and
weights changed mid-run show as a sample ratio mismatch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from benchmarks.experiment_world import World, experiments_toml, simulate
from tests.support import free_port, wait_for_health
from training.__main__ import main as training_main

ROOT = Path(__file__).resolve().parents[1]
RELOAD_S = 1.5  # the server looks at the file every 0.5 s and applies it within a second


@dataclass(frozen=True)
class Loop:
    port: int
    experiments: Path
    events: Path

    def use(self, text: str) -> None:
        """Run these experiments from now on (the server re-reads the edited file)."""
        self.experiments.write_text(text)
        time.sleep(RELOAD_S)

    def judge(self, out: Path, text: str) -> list[dict]:
        """`python -m training experiments` over the server's log, with this experiments file."""
        path = out / "judged.toml"
        path.write_text(text)
        argv = ["experiments", "--events", str(self.events), "--experiments", str(path), "--out", str(out)]
        assert training_main([*argv, "--engine-memory-gb", "1"]) == 0
        return json.loads((out / "experiments.json").read_text())["experiments"]


@pytest.fixture(scope="module")
def loop(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    """One server with two worker processes for the module; each test names its own experiments, so
    the log they share holds each one's exposures apart."""
    state = tmp_path_factory.mktemp("loop")
    path = state / "experiments.toml"
    path.write_text(experiments_toml({"warmup": "warmup"}))
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "service", "--model-dir", str(model_dir), "--port", str(port),
            "--metrics-port", "0", "--workers", "2", "--max-solves", "1", "--services", "recommend",
            "--tiers-dir", str(state / "no-tiers"), "--state-dir", str(state), "--log-format", "text",
            "--events-dir", str(state / "events"), "--experiments", str(path),
        ],
        cwd=ROOT, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            wait_for_health(channel, "", 1, timeout_s=60)
        yield Loop(port, path, state / "events")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_the_arm_that_truly_gets_more_clicks_is_named_the_winner(loop: Loop, tmp_path: Path) -> None:
    text = experiments_toml({"feed": "home_feed"}, min_users_per_arm=750)
    loop.use(text)
    answers = simulate(loop.port, World(range(1500), lift=1.6, prefix="win"), ["home_feed"])
    assert answers == 4500
    (feed,) = loop.judge(tmp_path, text)
    assert [arm["exposures"] for arm in feed["arms"]] == pytest.approx([2250, 2250], rel=0.1)
    assert feed["decision"]["status"] == "winner", feed["decision"]
    assert feed["decision"]["winner"] == "candidate"


def test_aa_experiments_rarely_name_a_winner(loop: Loop, tmp_path: Path) -> None:
    touchpoints = [f"tp{n:02d}" for n in range(20)]
    text = experiments_toml({f"aa{tp}": tp for tp in touchpoints}, min_users_per_arm=100)
    loop.use(text)
    simulate(loop.port, World(range(200), prefix="aa", seed=1), touchpoints)
    judged = loop.judge(tmp_path, text)
    assert len(judged) == 20 and all(sum(e["srm"]["users"]) == 200 for e in judged)
    winners = [e["name"] for e in judged if e["decision"]["status"] == "winner"]
    print(f"A/A: {len(winners)} of 20 named a winner: {winners}")
    assert len(winners) <= 2


def test_weights_changed_mid_run_are_a_sample_ratio_mismatch(loop: Loop, tmp_path: Path) -> None:
    loop.use(experiments_toml({"ratio": "home_feed"}))
    simulate(loop.port, World(range(300), visits=1, prefix="srm"), ["home_feed"])
    final = experiments_toml({"ratio": "home_feed"}, weights=(1, 3))
    loop.use(final)
    simulate(loop.port, World(range(300, 600), visits=1, prefix="srm"), ["home_feed"])
    (ratio,) = loop.judge(tmp_path, final)
    assert ratio["srm"]["mismatch"] and sum(ratio["srm"]["users"]) == 600
    assert ratio["decision"]["status"] == "sample_ratio_mismatch"
