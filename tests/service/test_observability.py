"""Metrics, request ids, structured logs and audit lines, through the real server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest

from service.logs import hash_id
from service.pb.shifu.v1 import dispatch_pb2 as dpb
from service.pb.shifu.v1 import dispatch_pb2_grpc, recommend_pb2_grpc
from service.pb.shifu.v1 import recommend_pb2 as rpb
from tests.support import (
    ROOT,
    free_port,
    health_of,
    sample_job,
    sample_technician,
    start_server,
    wait_for_health,
)

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def scrape(port: int) -> dict[str, float]:
    """Every sample on /metrics, keyed by name and sorted labels."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            name, labels, value = match.groups()
            pairs = sorted(re.findall(r'(\w+)="([^"]*)"', labels or ""))
            samples[name + "{" + ",".join(f"{k}={v}" for k, v in pairs) + "}"] = float(value)
    return samples


def handled(samples: dict[str, float], service: str, method: str, code: str) -> float:
    labels = f"grpc_code={code},grpc_method={method},grpc_service={service},grpc_type=unary"
    return samples.get(f"grpc_server_handled_total{{{labels}}}", 0.0)


def test_metrics_count_calls_codes_latency_versions_and_solves(model_dir: Path) -> None:
    metrics_port = free_port()
    running = start_server(model_dir, metrics_port=metrics_port)
    service = "shifu.v1.RecommendService"
    try:
        before = scrape(metrics_port)
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            recommend = recommend_pb2_grpc.RecommendServiceStub(channel)
            for _ in range(3):
                recommend.Recommend(rpb.RecommendRequest(user_id="u", limit=2), timeout=10)
            with pytest.raises(grpc.RpcError):
                recommend.Recommend(rpb.RecommendRequest(limit=-1), timeout=10)
            recommend.Recommend(rpb.RecommendRequest(scene="newhome"), timeout=10)
            dispatch_pb2_grpc.DispatchServiceStub(channel).AssignJobs(
                dpb.AssignJobsRequest(jobs=[sample_job()], technicians=[sample_technician()]), timeout=10
            )
        after = scrape(metrics_port)
    finally:
        running.shutdown()
    assert handled(after, service, "Recommend", "OK") - handled(before, service, "Recommend", "OK") == 4
    invalid = handled(after, service, "Recommend", "INVALID_ARGUMENT")
    assert invalid - handled(before, service, "Recommend", "INVALID_ARGUMENT") == 1
    call = "{grpc_method=Recommend,grpc_service=shifu.v1.RecommendService,grpc_type=unary}"
    started = "grpc_server_started_total" + call
    assert after[started] - before.get(started, 0) == 5
    latency = "grpc_server_handling_seconds_count" + call
    assert after[latency] - before.get(latency, 0) == 5
    typo = "shifu_recommend_warnings_total{code=unknown_scene}"
    assert after[typo] - before.get(typo, 0) == 1
    version = running.registry.current().version
    assert after[f"shifu_version_loaded{{kind=model,version={version}}}"] == 1
    solves = "shifu_dispatch_solves_total{mode=assign,status=optimal}"
    assert after[solves] - before.get(solves, 0) == 1
    assert (
        "shifu_grpc_server_in_flight{grpc_method=Recommend,grpc_service=shifu.v1.RecommendService}" in after
    )


def test_request_ids_are_echoed_or_generated(server) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        recommend = recommend_pb2_grpc.RecommendServiceStub(channel)
        _, call = recommend.Recommend.with_call(
            rpb.RecommendRequest(user_id="u", limit=1), timeout=10, metadata=(("x-request-id", "order-42.a"),)
        )
        assert dict(call.initial_metadata())["x-request-id"] == "order-42.a"
        _, call = recommend.Recommend.with_call(rpb.RecommendRequest(user_id="u", limit=1), timeout=10)
        assert re.fullmatch(r"[0-9a-f]{32}", dict(call.initial_metadata())["x-request-id"])
        # An error carries it too, and an id with characters a log could be confused by is replaced.
        with pytest.raises(grpc.RpcError) as caught:
            recommend.Recommend(
                rpb.RecommendRequest(limit=-1), timeout=10, metadata=(("x-request-id", "a b {x}"),)
            )
        echoed = dict(caught.value.initial_metadata())  # type: ignore[attr-defined]
        assert re.fullmatch(r"[0-9a-f]{32}", echoed["x-request-id"])


def test_the_command_logs_json_with_request_ids_hashed_users_and_audit_lines(
    model_dir: Path, tmp_path
) -> None:
    """Two worker processes: the metrics on the parent's port add up both; every log line is JSON."""
    port, metrics_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "service", "--model-dir", str(model_dir), "--port", str(port),
            "--metrics-port", str(metrics_port), "--workers", "2", "--max-solves", "1",
            "--tiers-dir", str(tmp_path / "no-tiers"),
        ],
        cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ, "SHIFU_LOG_LEVEL": "INFO"},
    )  # fmt: skip
    calls = 12
    try:
        for n in range(calls):  # a channel each: SO_REUSEPORT spreads connections over the workers
            with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("shifu.test", n)]) as channel:
                wait_for_health(channel, "", 1, timeout_s=120)
                recommend_pb2_grpc.RecommendServiceStub(channel).Recommend(
                    rpb.RecommendRequest(user_id="alice@example.com", limit=2),
                    timeout=10,
                    metadata=(("x-request-id", f"call-{n}"),),
                )
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            dispatch_pb2_grpc.DispatchServiceStub(channel).AssignJobs(
                dpb.AssignJobsRequest(jobs=[sample_job()], technicians=[sample_technician()]),
                timeout=10,
                metadata=(("x-request-id", "dispatch-1"),),
            )
            assert health_of(channel) == 1
        samples = scrape(metrics_port)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0
    assert handled(samples, "shifu.v1.RecommendService", "Recommend", "OK") == calls
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # every line is JSON
    assert "alice@example.com" not in stderr
    served = [e for e in lines if e.get("type") == "call" and e.get("method", "").endswith("/Recommend")]
    assert {e["request_id"] for e in served} == {f"call-{n}" for n in range(calls)}
    assert all(e["user"] == hash_id("alice@example.com") and e["code"] == "OK" for e in served)
    assert len({e["process"] for e in served}) == 2  # both workers answered
    (audit,) = [e for e in lines if e.get("type") == "dispatch_call"]
    assert audit["request_id"] == "dispatch-1" and audit["logger"] == "shifu.audit"
    assert audit["jobs"] == 1 and audit["technicians"] == 1 and audit["code"] == "OK"
    assert audit["solve_ms"] >= 0 and "client" in audit
    assert [e["version"] for e in lines if e.get("type") == "version_change"]  # each worker logged its load
