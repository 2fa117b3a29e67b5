"""Access control through the real server: tokens × scopes × RPCs, rotation, TLS, mutual TLS, and the
refusal to serve a public address unprotected."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from service import config
from service.pb.shifu.v1 import catalog_pb2 as cpb
from service.pb.shifu.v1 import catalog_pb2_grpc, dispatch_pb2_grpc, events_pb2_grpc, recommend_pb2_grpc
from service.pb.shifu.v1 import dispatch_pb2 as dpb
from service.pb.shifu.v1 import events_pb2 as epb
from service.pb.shifu.v1 import recommend_pb2 as rpb
from service.server import RunningServer
from tests.support import (
    ROOT,
    health_of,
    make_certificates,
    sample_job,
    sample_technician,
    start_server,
    write_auth_file,
)

CLIENTS = {
    "storefront": ("store-token", ["recommend"]),
    "orders": ("orders-token", ["dispatch"]),
    "both": ("both-token", ["recommend", "dispatch"]),
    "shop": ("shop-token", ["catalog", "events"]),
    "nothing": ("nothing-token", []),
}
OK = grpc.StatusCode.OK


# Each RPC with a request it answers OK when the caller may call it; the scope it needs (None: open).
Call = Callable[[grpc.Channel, tuple], object]
RPCS: dict[str, tuple[str | None, Call]] = {
    "Recommend": (
        "recommend",
        lambda ch, md: recommend_pb2_grpc.RecommendServiceStub(ch).Recommend(
            rpb.RecommendRequest(user_id="u", limit=3), timeout=10, metadata=md
        ),
    ),
    "SimilarItems": (
        "recommend",
        lambda ch, md: recommend_pb2_grpc.RecommendServiceStub(ch).SimilarItems(
            rpb.SimilarItemsRequest(item_id="i00001", limit=3), timeout=10, metadata=md
        ),
    ),
    "AssignJobs": (
        "dispatch",
        lambda ch, md: dispatch_pb2_grpc.DispatchServiceStub(ch).AssignJobs(
            dpb.AssignJobsRequest(jobs=[sample_job()], technicians=[sample_technician()]),
            timeout=10,
            metadata=md,
        ),
    ),
    "RankTechnicians": (
        "dispatch",
        lambda ch, md: dispatch_pb2_grpc.DispatchServiceStub(ch).RankTechnicians(
            dpb.RankTechniciansRequest(job=sample_job(), technicians=[sample_technician()]),
            timeout=10,
            metadata=md,
        ),
    ),
    "GetItems": (
        "catalog",
        lambda ch, md: catalog_pb2_grpc.CatalogServiceStub(ch).GetItems(
            cpb.GetItemsRequest(item_ids=["i00001"]), timeout=10, metadata=md
        ),
    ),
    "RecordEvents": (
        "events",
        lambda ch, md: events_pb2_grpc.EventServiceStub(ch).RecordEvents(
            epb.RecordEventsRequest(
                events=[
                    epb.Event(
                        event_id=uuid.uuid4().hex,
                        timestamp=Timestamp(seconds=1_800_000_000),
                        user_id="u",
                        item_id="i00001",
                        event_type="view",
                    )
                ]
            ),
            timeout=10,
            metadata=md,
        ),
    ),
    "Health": (
        None,
        lambda ch, md: health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(), timeout=10, metadata=md
        ),
    ),
    "Reflection": (
        None,
        lambda ch, md: next(
            reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10, metadata=md
            )
        ),
    ),
}


def code_of(call: Call, channel: grpc.Channel, metadata: tuple) -> grpc.StatusCode:
    try:
        call(channel, metadata)
    except grpc.RpcError as error:
        return error.code()
    return OK


@pytest.fixture(scope="module")
def guarded(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    auth = write_auth_file(tmp_path_factory.mktemp("auth") / "clients.toml", CLIENTS)
    running = start_server(model_dir, auth_file=str(auth))
    yield running
    running.shutdown()


def expected(token: str | None, scope: str | None) -> grpc.StatusCode:
    if scope is None:
        return OK
    known = {t: scopes for t, scopes in CLIENTS.values()}
    if token is None or token not in known:
        return grpc.StatusCode.UNAUTHENTICATED
    return OK if scope in known[token] else grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("token", [None, "wrong-token", *(t for t, _ in CLIENTS.values())])
def test_every_token_against_every_rpc(guarded: RunningServer, token: str | None) -> None:
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    with grpc.insecure_channel(f"127.0.0.1:{guarded.port}") as channel:
        got = {name: code_of(call, channel, metadata) for name, (_, call) in RPCS.items()}
    assert got == {name: expected(token, scope) for name, (scope, _) in RPCS.items()}


def test_malformed_authorization_headers_are_unauthenticated(guarded: RunningServer) -> None:
    _, call = RPCS["Recommend"]
    with grpc.insecure_channel(f"127.0.0.1:{guarded.port}") as channel:
        for value in ("store-token", "Basic store-token", "Bearer ", "bearer  "):
            assert code_of(call, channel, (("authorization", value),)) == grpc.StatusCode.UNAUTHENTICATED


def test_tokens_rotate_without_a_restart(model_dir: Path, tmp_path: Path) -> None:
    auth = write_auth_file(tmp_path / "clients.toml", {"storefront": ("old-token", ["recommend"])})
    running = start_server(model_dir, auth_file=str(auth))
    _, call = RPCS["Recommend"]
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            assert code_of(call, channel, (("authorization", "Bearer old-token"),)) == OK
            write_auth_file(auth, {"storefront": ("new-token", ["recommend"])})
            time.sleep(1.2)  # the file's modification time is looked at once a second
            assert code_of(call, channel, (("authorization", "Bearer new-token"),)) == OK
            assert (
                code_of(call, channel, (("authorization", "Bearer old-token"),))
                == grpc.StatusCode.UNAUTHENTICATED
            )
            # A file broken by a bad edit keeps the clients that were valid.
            auth.write_text("[[client]]\nname = 'x'\n")
            time.sleep(1.2)
            assert code_of(call, channel, (("authorization", "Bearer new-token"),)) == OK
    finally:
        running.shutdown()


def test_tls_and_mutual_tls(model_dir: Path, tmp_path: Path) -> None:
    certs = make_certificates(tmp_path)
    tls = start_server(model_dir, tls_cert=str(certs.server_cert), tls_key=str(certs.server_key))
    mutual = start_server(
        model_dir,
        tls_cert=str(certs.server_cert),
        tls_key=str(certs.server_key),
        tls_client_ca=str(certs.ca),
    )
    _, call = RPCS["Recommend"]
    ca = certs.ca.read_bytes()

    def secure(port: int, cert: Path | None = None, key: Path | None = None) -> grpc.Channel:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca,
            private_key=key.read_bytes() if key else None,
            certificate_chain=cert.read_bytes() if cert else None,
        )
        return grpc.secure_channel(f"localhost:{port}", credentials)

    try:
        with secure(tls.port) as channel:
            assert code_of(call, channel, ()) == OK
        with grpc.insecure_channel(f"127.0.0.1:{tls.port}") as channel:
            assert code_of(call, channel, ()) == grpc.StatusCode.UNAVAILABLE
        with secure(mutual.port, certs.client_cert, certs.client_key) as channel:
            assert code_of(call, channel, ()) == OK
        with secure(mutual.port) as channel:  # no client certificate
            assert code_of(call, channel, ()) == grpc.StatusCode.UNAVAILABLE
        with secure(mutual.port, certs.stranger_cert, certs.stranger_key) as channel:
            assert code_of(call, channel, ()) == grpc.StatusCode.UNAVAILABLE
    finally:
        tls.shutdown()
        mutual.shutdown()


def test_the_client_command_speaks_tls_and_tokens(model_dir: Path, tmp_path: Path) -> None:
    certs = make_certificates(tmp_path)
    auth = write_auth_file(tmp_path / "clients.toml", CLIENTS)
    running = start_server(
        model_dir, tls_cert=str(certs.server_cert), tls_key=str(certs.server_key), auth_file=str(auth)
    )
    try:
        base = [
            sys.executable,
            "-m",
            "service.client",
            "--target",
            f"localhost:{running.port}",
            "--ca",
            str(certs.ca),
        ]
        allowed = subprocess.run(
            [*base, "--token", "store-token", "recommend", "--user", "u", "--limit", "2"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert allowed.returncode == 0, allowed.stderr
        denied = subprocess.run(
            [*base, "--token", "orders-token", "recommend", "--user", "u"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert denied.returncode == 1 and denied.stderr.startswith("PERMISSION_DENIED")
    finally:
        running.shutdown()


@pytest.mark.parametrize(
    ("values", "allowed"),
    [
        ({"host": "0.0.0.0"}, False),
        ({"host": "10.1.2.3", "tls_cert": "c.pem", "tls_key": "k.pem"}, False),
        ({"host": "0.0.0.0", "insecure": "true"}, True),
        ({"host": "0.0.0.0", "tls_cert": "c.pem", "tls_key": "k.pem", "auth_file": "a.toml"}, True),
        ({"host": "127.0.0.1"}, True),
        ({"host": "::1"}, True),
        ({"host": "localhost"}, True),
    ],
)
def test_public_addresses_need_tls_and_tokens_or_an_explicit_insecure(values: dict, allowed: bool) -> None:
    environ = {f"SHIFU_{k.upper()}": v for k, v in values.items()}
    if allowed:
        config.load(environ=environ)
    else:
        with pytest.raises(ValueError, match="not a loopback address"):
            config.load(environ=environ)


def test_the_command_refuses_a_public_address_without_protection() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--host", "0.0.0.0", "--metrics-port", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "--insecure" in result.stderr


def test_health_stays_open_with_tokens_required(guarded: RunningServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{guarded.port}") as channel:
        assert health_of(channel, "shifu.v1.DispatchService") == health_pb2.HealthCheckResponse.SERVING
