"""Shared fixtures: a small generated world, a model trained on it, and a real server on a free port."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from service.server import RunningServer
from tests.support import FAST_TRAINING, SMALL_WORLD, start_server
from training import demo, engines
from training.train import train


@pytest.fixture(scope="session", autouse=True)
def spark_before_grpc(request: pytest.FixtureRequest) -> None:
    """PySpark launches its JVM by forking this process (with a `preexec_fn`, so a real fork that runs
    gRPC's fork handlers). Once the service tests have left gRPC threads running, gRPC skips those
    handlers ("Other threads are currently calling into gRPC") and on a loaded machine the launch then
    failed with JAVA_GATEWAY_EXITED. So when the run includes Spark tests, their session (one per
    process: later sessions reuse it) starts first, before any channel or server exists."""
    wanted = any(item.get_closest_marker("spark") for item in request.session.items)
    if wanted and shutil.which("java") is not None:
        engines.Spark(memory_gb=1.0)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return demo.generate(tmp_path_factory.mktemp("world"), seed=11, size=SMALL_WORLD)


@pytest.fixture(scope="session")
def model_dir(world: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models")
    train(world["events.csv"], world["items.csv"], world["users.csv"], out, FAST_TRAINING)
    return out


@pytest.fixture(scope="session")
def server(model_dir: Path) -> Iterator[RunningServer]:
    running = start_server(model_dir)
    yield running
    running.shutdown()


@pytest.fixture(scope="session")
def channel(server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch
