"""Helpers the tests share (imported, unlike fixtures): servers, ports, certificates, tokens."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd
from grpc_health.v1 import health_pb2, health_pb2_grpc

from models.dispatch.problem import GeoPoint, Job, Technician
from service.config import Settings
from service.server import RunningServer, start
from training import demo, engines
from training.components import ModelConfig
from training.event_store import EventStore
from training.readers import DEFAULT_EVENT_WEIGHTS
from training.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
FAST_TRAINING = TrainConfig(
    model=ModelConfig.with_params(
        als={"factors": 16, "iterations": 8}, lightfm={"components": 16, "epochs": 5}
    )
)
SMALL_WORLD = demo.DemoSize(
    users=600, items=400, sessions_per_user=4.0, technicians=30, jobs=80, job_log_technicians=150
)


@contextlib.contextmanager
def event_store(
    events: pd.DataFrame, catalog: list[str] | None = None, fraction: float = 0.5, engine: str = "duckdb"
) -> Iterator[EventStore]:
    """An event table loaded, checked and split (default event weights; positives: click and up)."""
    with engines.opened(engine, memory_gb=1.0) as opened:
        store = EventStore(opened, DEFAULT_EVENT_WEIGHTS, None if catalog is None else np.array(catalog))
        store.load_frame(events)
        store.split(DEFAULT_EVENT_WEIGHTS["click"], fraction)
        yield store


def start_server(model_dir: Path, tiers_dir: Path | None = None, **overrides: Any) -> RunningServer:
    """A server on a free port with one solver lane, no metrics endpoint and a state directory of its
    own unless asked; without `tiers_dir`, one that has no tier table (never the working tree's)."""
    settings = dataclasses.replace(
        Settings(),
        model_dir=model_dir,
        tiers_dir=tiers_dir or model_dir.parent / f"{model_dir.name}-no-tiers",
        port=0,
        poll_seconds=0.1,
        grace_seconds=5.0,
        **{
            "metrics_port": 0,
            "max_solves": 1,
            "state_dir": Path(tempfile.mkdtemp(prefix="shifu-state-")),
            **overrides,
        },
    )
    return start(settings)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_of(channel: grpc.Channel, service: str = "") -> int:
    return (
        health_pb2_grpc.HealthStub(channel)
        .Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        .status
    )


def wait_for_health(channel: grpc.Channel, service: str, status: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if health_of(channel, service) == status:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{service or 'server'} health never became {status}")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write_auth_file(path: Path, clients: dict[str, tuple[str, list[str]]]) -> Path:
    """clients: name -> (token, scopes)."""
    blocks = [
        f'[[client]]\nname = "{name}"\ntoken_sha256 = "{token_hash(token)}"\nscopes = {json.dumps(scopes)}\n'
        for name, (token, scopes) in clients.items()
    ]
    path.write_text("\n".join(blocks))
    return path


@dataclasses.dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # signed by another CA
    stranger_key: Path


def make_certificates(directory: Path) -> Certificates:
    """A throw-away CA, a server certificate for localhost/127.0.0.1 and client certificates, one of
    them from a CA the server does not trust."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def certificate(subject: str, public, issuer: str, signer, ca: bool, san=None) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(signer, hashes.SHA256())

    def write(stem: str, cert: x509.Certificate, private) -> tuple[Path, Path]:
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path

    ca_key, other_ca_key = key(), key()
    ca = certificate("shifu test CA", ca_key.public_key(), "shifu test CA", ca_key, True)
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server_key, client_key, stranger_key = key(), key(), key()
    server = certificate("localhost", server_key.public_key(), "shifu test CA", ca_key, False, san)
    client = certificate("storefront", client_key.public_key(), "shifu test CA", ca_key, False)
    stranger = certificate("stranger", stranger_key.public_key(), "other CA", other_ca_key, False)
    ca_path, _ = write("ca", ca, ca_key)
    server_cert, server_key_path = write("server", server, server_key)
    client_cert, client_key_path = write("client", client, client_key)
    stranger_cert, stranger_key_path = write("stranger", stranger, stranger_key)
    return Certificates(
        ca_path, server_cert, server_key_path, client_cert, client_key_path, stranger_cert, stranger_key_path
    )


# Dispatch problems north of a point in Shanghai, `km` kilometres away.
CENTER = GeoPoint(31.23, 121.47)
HOUR = 3600.0


def near(km_north: float) -> GeoPoint:
    return GeoPoint(CENTER.lat + km_north / 111.195, CENTER.lng)


def job(job_id: str, km: float = 1.0, **kw: Any) -> Job:
    return Job(job_id=job_id, location=near(km), **kw)


def tech(tech_id: str, km: float = 0.0, **kw: Any) -> Technician:
    kw.setdefault("skills", frozenset({"install"}))
    return Technician(technician_id=tech_id, location=near(km), **kw)


def sample_job() -> Any:
    """One small AssignJobs job (protobuf) a sample technician can do."""
    from service.pb.shifu.v1 import dispatch_pb2

    job = dispatch_pb2.Job(job_id="j", required_skills=["repair"])
    job.location.lat, job.location.lng = 31.23, 121.47
    return job


def sample_technician() -> Any:
    from service.pb.shifu.v1 import dispatch_pb2

    tech = dispatch_pb2.Technician(technician_id="t", skills=["repair"])
    tech.location.lat, tech.location.lng = 31.24, 121.47
    return tech
