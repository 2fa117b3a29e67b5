"""Shared fixtures: a small generated world, a model trained on it, and a real server on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from service.server import RunningServer
from tests.support import FAST_TRAINING, SMALL_WORLD, start_server
from training import demo
from training.train import train


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
