"""Experiments through a real server: the experiment's touchpoint answered from the user's arm (its
version, components and rules), each answer recorded as an exposure that survives kill -9, the file
re-read when edited (a broken edit keeps what runs), and the same arm in every process."""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from models import event_format, experiments, versions
from models.experiments import ExperimentsError
from models.recommend.artifact import RecommenderArtifact
from models.recommend.query import Query
from models.recommend.recommender import Recommender
from service import metrics
from service.event_log import EventLog
from service.experiments import restricted
from service.pb.shifu.v1 import recommend_pb2 as rpb
from service.pb.shifu.v1 import recommend_pb2_grpc
from service.server import RunningServer
from tests.support import free_port, kill_mid_stream, start_server, wait_for_health

ROOT = Path(__file__).resolve().parents[2]
USERS = [f"u{n:05d}" for n in range(1, 200)]


def experiment_file(path: Path, candidate: str, name: str = "blend", touchpoint: str = "home_feed") -> Path:
    path.write_text(
        f'[experiment.{name}]\ntouchpoint = "{touchpoint}"\n'
        f'[[experiment.{name}.arms]]\nname = "control"\n'
        f'[[experiment.{name}.arms]]\nname = "candidate"\n{candidate}\n'
    )
    return path


def stub(port: int) -> tuple[grpc.Channel, recommend_pb2_grpc.RecommendServiceStub]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("shifu.test", uuid.uuid4().hex)])
    return channel, recommend_pb2_grpc.RecommendServiceStub(channel)


def ask(recommend, user: str, touchpoint: str = "home_feed") -> rpb.RecommendResponse:
    return recommend.Recommend(rpb.RecommendRequest(user_id=user, touchpoint=touchpoint, limit=5), timeout=10)


def exposures(events_dir: Path) -> list[event_format.Exposure]:
    lines = [
        line
        for path in sorted(events_dir.glob("*/exposures-*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    parsed = [event_format.parse_exposure(line) for line in lines]
    assert None not in parsed
    return [e for e in parsed if e is not None]


@pytest.fixture
def running(model_dir: Path, tmp_path: Path) -> Iterator[tuple[RunningServer, Path]]:
    path = experiment_file(tmp_path / "experiments.toml", 'components = ["popularity"]')
    server = start_server(model_dir, experiments=str(path))
    yield server, path
    server.shutdown()


def popularity_alone(model_dir: Path) -> Recommender:
    """The version's models blending popularity only, built here without the service's code."""
    name = versions.list_versions(model_dir)[-1]
    artifact = RecommenderArtifact.load(model_dir / name)
    only = np.array([float(c == "popularity") for c in artifact.components])
    return Recommender(dataclasses.replace(artifact, blend_weights=only, blend_visitor_weights=only), name)


def test_the_touchpoint_is_answered_by_the_users_arm_and_recorded(running, model_dir: Path) -> None:
    server, path = running
    blend = experiments.load(path).experiments[0]
    expected = popularity_alone(model_dir)
    _, recommend = stub(server.port)
    answers = {user: ask(recommend, user) for user in USERS[:40]}
    arms = {user: answer.experiment.arm for user, answer in answers.items()}
    assert arms == {user: blend.arm_of(user).name for user in arms}
    assert set(arms.values()) == {"control", "candidate"}
    for user, answer in answers.items():
        assert answer.experiment.name == "blend"
        alone = [i.item_id for i in expected.recommend(Query(user_id=user, touchpoint="home_feed", limit=5))]
        assert ([i.item_id for i in answer.items] == alone) == (arms[user] == "candidate"), user
    other = ask(recommend, USERS[0], touchpoint="product_page")
    assert not other.HasField("experiment")
    assert not ask(recommend, "", touchpoint="home_feed").HasField("experiment")  # nothing to stick by
    server.events.exposures.flush()
    recorded = {e.recommendation_id: e for e in exposures(server.settings.events())}
    assert len(recorded) == len(answers)  # one per answer in the experiment, none for the others
    for user, answer in answers.items():
        exposure = recorded[answer.recommendation_id]
        assert (exposure.user_id, exposure.touchpoint, exposure.experiment) == (user, "home_feed", "blend")
        assert (exposure.arm, exposure.model_version) == (arms[user], answer.model_version)
        assert list(exposure.item_ids) == [i.item_id for i in answer.items]
        assert abs(exposure.timestamp - time.time()) < 60


def wait_for(check, timeout_s: float = 3.0) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout_s
        time.sleep(0.05)
    return time.monotonic() - start


def test_an_edited_file_is_read_within_a_second_and_a_broken_edit_keeps_the_experiments(
    running, model_dir: Path
) -> None:
    server, path = running
    _, recommend = stub(server.port)
    assert ask(recommend, USERS[0]).experiment.name == "blend"
    version = versions.list_versions(model_dir)[-1]
    time.sleep(0.01)  # a new modification time
    experiment_file(path, f'version = "{version}"', name="search_test", touchpoint="search")
    taken = wait_for(lambda: ask(recommend, USERS[0], "search").experiment.name == "search_test")
    assert taken < 1.5
    assert not ask(recommend, USERS[0]).HasField("experiment")  # home_feed's experiment ended
    assert metrics.EXPERIMENT_VERSIONS._value.get() == 1  # the named version, loaded side by side
    for broken in ('version = "19990101T000000000000Z-nope"', 'components = ["svd"]', "colour = 1"):
        experiment_file(path, broken, name="other", touchpoint="home_feed")
        time.sleep(1.0)
        assert ask(recommend, USERS[0], "search").experiment.name == "search_test"
        assert not ask(recommend, USERS[0]).HasField("experiment")


def test_a_bad_file_stops_the_start_naming_the_key(model_dir: Path, tmp_path: Path) -> None:
    path = experiment_file(tmp_path / "bad.toml", 'version = "19990101T000000000000Z-nope"')
    with pytest.raises(ExperimentsError, match=r"experiment.blend.arms\[1\].version: '19990101"):
        start_server(model_dir, experiments=str(path))


def serve(model_dir: Path, state: Path, port: int, workers: int, path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable, "-m", "service", "--model-dir", str(model_dir), "--port", str(port),
            "--metrics-port", "0", "--workers", str(workers), "--max-solves", "1", "--services", "recommend",
            "--tiers-dir", str(state / "no-tiers"), "--state-dir", str(state), "--log-format", "text",
            "--experiments", str(path),
        ],
        cwd=ROOT, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def arms_on_fresh_connections(port: int) -> set[tuple[str, str]]:
    """(user, arm) over 10 fresh connections each: SO_REUSEPORT spreads them over the workers."""
    seen = set()
    for _ in range(10):
        channel, recommend = stub(port)
        with channel:
            seen |= {(user, ask(recommend, user).experiment.arm) for user in USERS[:10]}
    return seen


def test_exposures_survive_kill_9_and_arms_agree_across_processes_and_restarts(
    model_dir: Path, tmp_path: Path
) -> None:
    port, state = free_port(), tmp_path / "state"
    path = experiment_file(tmp_path / "experiments.toml", "max_per_category = 1")
    blend = experiments.load(path).experiments[0]
    process = serve(model_dir, state, port, 2, path)
    answered: list[str] = []
    try:
        channel, recommend = stub(port)
        wait_for_health(channel, "", 1, timeout_s=120)
        assert arms_on_fresh_connections(port) == {(u, blend.arm_of(u).name) for u in USERS[:10]}
        calls = (
            functools.partial(lambda u: [ask(recommend, u).recommendation_id], USERS[n % len(USERS)])
            for n in range(100_000)
        )
        answered = kill_mid_stream(process, calls, 300)  # mid-answering
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    on_disk = [e.recommendation_id for e in exposures(state / "events")]
    assert set(answered) <= set(on_disk) and len(on_disk) == len(set(on_disk))
    process = serve(model_dir, state, port, 1, path)
    try:
        channel, _ = stub(port)
        wait_for_health(channel, "", 1, timeout_s=120)
        assert arms_on_fresh_connections(port) == {(u, blend.arm_of(u).name) for u in USERS[:10]}
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_an_arm_of_some_components_shares_the_artifacts_arrays(model_dir: Path) -> None:
    artifact = RecommenderArtifact.load(model_dir / versions.list_versions(model_dir)[-1])
    ease = restricted(artifact, ("ease",))
    assert ease.item_ids is artifact.item_ids and ease.components is artifact.components
    assert ease.weights() == {name: float(name == "ease") for name in artifact.components}
    assert sum(restricted(artifact, ("ease", "als")).weights(visitor=True).values()) == pytest.approx(1)


def test_half_an_exposure_line_left_by_a_crash_is_cut_at_start(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events", tmp_path / "state.sqlite")
    exposure = event_format.Exposure("r1", time.time(), "u1", "home_feed", "blend", "control", "v", ("i1",))
    log.exposures.write(exposure)
    log.close()
    path = event_format.partition(tmp_path / "events", exposure.day(), "w0", event_format.EXPOSURES)
    with path.open("ab") as file:
        file.write(b'{"recommendation_id":"r2","timest')
    log = EventLog(tmp_path / "events", tmp_path / "state.sqlite")
    log.exposures.write(dataclasses.replace(exposure, recommendation_id="r3"))
    log.close()
    assert [e.recommendation_id for e in exposures(tmp_path / "events")] == ["r1", "r3"]
