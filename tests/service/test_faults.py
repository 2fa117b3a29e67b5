"""Faults injected into a running server: broken model and tier versions, no version at all, and
SIGTERM while calls are in flight."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2

from models import versions
from models.dispatch import tiers as tier_table
from models.recommend.artifact import ARRAYS_FILE
from service.pb.shifu.v1 import dispatch_pb2 as dpb
from service.pb.shifu.v1 import dispatch_pb2_grpc, recommend_pb2_grpc
from service.pb.shifu.v1 import recommend_pb2 as rpb
from tests.support import ROOT, free_port, health_of, start_server, wait_for_health

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def copy_version(model_dir: Path, root: Path, name: str) -> Path:
    (newest,) = versions.list_versions(model_dir)
    shutil.copytree(model_dir / newest, root / name)
    return root / name


def truncate(version: Path) -> None:
    path = version / ARRAYS_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_byte(version: Path) -> None:
    path = version / ARRAYS_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))


def wrong_shapes(version: Path) -> None:
    """Consistent checksums, inconsistent arrays: item titles for one item fewer."""
    path = version / ARRAYS_FILE
    with np.load(path, allow_pickle=False) as loaded:
        arrays = {name: loaded[name] for name in loaded.files}
    arrays["item_titles"] = arrays["item_titles"][:-1]
    np.savez(path, **arrays)
    manifest = json.loads((version / versions.MANIFEST).read_text())
    manifest["files"][ARRAYS_FILE] = versions.sha256_file(path)
    (version / versions.MANIFEST).write_text(json.dumps(manifest))


def missing_file(version: Path) -> None:
    (version / ARRAYS_FILE).unlink()


def garbage_manifest(version: Path) -> None:
    (version / versions.MANIFEST).write_text("{not json")


FAULTS: dict[str, Callable[[Path], None]] = {
    "truncated": truncate,
    "wrong checksum": flip_a_byte,
    "wrong shapes": wrong_shapes,
    "missing file": missing_file,
    "garbage manifest": garbage_manifest,
}


def test_broken_versions_are_refused_counted_and_the_old_one_keeps_serving(
    model_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    first = copy_version(model_dir, root, "20260101T000000Z-aaaaaa")
    running = start_server(root)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = recommend_pb2_grpc.RecommendServiceStub(channel)
            wait_for_health(channel, "", SERVING)
            for n, (name, fault) in enumerate(FAULTS.items()):
                broken = copy_version(model_dir, root, f"2026020{n}T000000Z-{n:06d}")
                fault(broken)
                deadline = time.monotonic() + 10
                while broken.name not in running.registry.refused() and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert broken.name in running.registry.refused(), name
                answer = stub.Recommend(rpb.RecommendRequest(user_id="u", limit=3), timeout=10)
                assert answer.model_version == first.name, name
                assert health_of(channel, "") == SERVING
            # A half-written directory (no manifest yet, or training's hidden temporary name) is not a
            # version at all: it is neither loaded nor refused.
            (root / "20260301T000000Z-halfway").mkdir()
            (root / "20260301T000000Z-halfway" / ARRAYS_FILE).write_bytes(b"partial")
            shutil.copytree(first, root / ".20260302T000000Z-tmp")
            time.sleep(0.5)
            assert stub.Recommend(rpb.RecommendRequest(user_id="u"), timeout=10).model_version == first.name
            good = copy_version(model_dir, root, "20260401T000000Z-bbbbbb")
            deadline = time.monotonic() + 10
            while running.registry.current().version != good.name and time.monotonic() < deadline:
                time.sleep(0.05)
            assert stub.Recommend(rpb.RecommendRequest(user_id="u"), timeout=10).model_version == good.name
    finally:
        running.shutdown()


def test_with_no_valid_version_recommend_is_unavailable_and_not_serving(
    model_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    truncate(copy_version(model_dir, root, "20260101T000000Z-aaaaaa"))
    running = start_server(root)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            assert health_of(channel, "shifu.v1.RecommendService") == NOT_SERVING
            assert health_of(channel, "") == NOT_SERVING
            assert health_of(channel, "shifu.v1.DispatchService") == SERVING
            with pytest.raises(grpc.RpcError) as caught:
                recommend_pb2_grpc.RecommendServiceStub(channel).Recommend(rpb.RecommendRequest(), timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "no model version loaded" in caught.value.details()
    finally:
        running.shutdown()


def publish_tiers(root: Path, rows: list[str]) -> Path:
    def write(directory: Path) -> dict:
        (directory / tier_table.TABLE_FILE).write_text("\n".join(["technician_id,period,tier", *rows]) + "\n")
        return {"format": tier_table.FORMAT}

    return versions.publish(root, write)


def test_a_broken_tier_version_leaves_the_previous_tiers(model_dir: Path, tmp_path: Path) -> None:
    good = publish_tiers(tmp_path / "tiers", ["a,2026-10,5"])
    running = start_server(model_dir, tiers_dir=tmp_path / "tiers")
    try:
        assert running.tiers.current().version == good.name
        bad = publish_tiers(tmp_path / "tiers", ["a,2026-11,9"])  # no such tier
        worse = publish_tiers(tmp_path / "tiers", ["a,2026-12,not-a-number"])
        deadline = time.monotonic() + 10
        while {bad.name, worse.name} - running.tiers.refused() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {bad.name, worse.name} <= running.tiers.refused()
        assert running.tiers.current().tier_of("a") == 5
    finally:
        running.shutdown()


def test_sigterm_under_load_fails_no_call_that_had_started(model_dir: Path, world: dict[str, Path]) -> None:
    """Calls in flight when SIGTERM arrives finish; calls after it are refused cleanly; exit 0 in time."""
    port = free_port()
    grace = 8.0
    process = subprocess.Popen(
        [
            sys.executable, "-m", "service", "--model-dir", str(model_dir), "--port", str(port),
            "--metrics-port", "0", "--grace-seconds", str(grace), "--max-solves", "1",
        ],
        cwd=ROOT, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    day = json_format.Parse(world["dispatch_day.json"].read_text(), dpb.AssignJobsRequest())
    day.options.mode, day.options.time_limit_ms = dpb.ASSIGN_MODE_ROUTE, 2500
    outcomes: list[tuple[float, grpc.StatusCode]] = []
    lock = threading.Lock()
    stop = threading.Event()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            wait_for_health(channel, "", SERVING, timeout_s=120)
            recommend = recommend_pb2_grpc.RecommendServiceStub(channel)
            dispatch = dispatch_pb2_grpc.DispatchServiceStub(channel)

            def caller() -> None:
                while not stop.is_set():
                    sent = time.monotonic()
                    try:
                        recommend.Recommend(rpb.RecommendRequest(user_id="u", limit=5), timeout=10)
                        code = grpc.StatusCode.OK
                    except grpc.RpcError as error:
                        code = error.code()
                    with lock:
                        outcomes.append((sent, code))

            with futures.ThreadPoolExecutor(5) as pool:
                solve = pool.submit(dispatch.AssignJobs, day, timeout=30)
                callers = [pool.submit(caller) for _ in range(4)]
                time.sleep(1.0)
                signalled = time.monotonic()
                process.send_signal(signal.SIGTERM)
                time.sleep(1.0)
                stop.set()
                futures.wait(callers)
                assert solve.result().status == dpb.SOLVE_STATUS_FEASIBLE  # started before: finished
        assert process.wait(timeout=grace + 10) == 0
        assert time.monotonic() - signalled < grace + 5
    finally:
        if process.poll() is None:
            process.kill()
    before = [code for sent, code in outcomes if sent < signalled - 0.05]
    after = [code for sent, code in outcomes if sent > signalled + 0.5]
    assert len(before) > 20 and set(before) == {grpc.StatusCode.OK}
    assert after and set(after) <= {grpc.StatusCode.UNAVAILABLE}


def test_a_broken_state_file_stops_the_start_with_one_line_naming_it(model_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.db").write_bytes(b"not a database, whatever it once was" * 100)
    for workers in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-m", "service", "--model-dir", str(model_dir), "--state-dir", str(state),
             "--port", str(free_port()), "--metrics-port", "0", "--workers", workers, "--log-format", "text"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert f"cannot open the live catalog {state / 'state.db'}" in done.stderr
