"""Helpers the tests share (imported, unlike fixtures): servers, ports, certificates, tokens, headless
browsers, small worlds and a small recommender artifact; `tests.support.days` checks dispatch days."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from models.dispatch.problem import Break, Capacity, GeoPoint, Job, Mode, Plan, Problem, Technician, Window
from models.recommend import content
from models.recommend.artifact import RecommenderArtifact
from models.recommend.components import NAMES
from models.recommend.components.als import Als
from models.recommend.components.ease import Ease
from models.recommend.components.lightfm import LightFM
from models.recommend.components.popularity import Popularity
from service.config import Settings
from service.server import RunningServer, start
from tests.support.days import assert_breaks_kept, assert_ends_reached, assert_no_double_booking, km_between
from training import demo, engines
from training.components import ModelConfig
from training.event_store import EventStore
from training.readers import DEFAULT_EVENT_WEIGHTS
from training.train import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
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


# Headless browsers, for tests that look at a page as a person does; .ci/run installs the first.
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
# Each needs, to start with no display, as root, in a container, and to reach nothing on its own: no
# sandbox (root, no user namespaces), no GPU, no background fetches, updates, sync or first-run pages.
BROWSER_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def installed_browsers() -> list[str]:
    return [path for name in BROWSERS if (path := shutil.which(name))]


@contextlib.contextmanager
def headless_browser(path: str | None = None) -> Iterator[list[str]]:
    """The command that runs `path` (default: the first of BROWSERS installed; the test is skipped
    when there is none) headless with a profile of its own, removed afterwards. Only the headless
    shell is headless by itself: a full Chromium without --headless looks for a display and exits 1,
    and without a fresh --user-data-dir hands the page to another Chromium running on that profile."""
    path = path or next(iter(installed_browsers()), None)
    if path is None:
        pytest.skip(f"no headless browser ({' or '.join(BROWSERS)}); .ci/run installs {BROWSERS[0]}")
    headless = [] if Path(path).name.endswith("headless-shell") else ["--headless"]
    with tempfile.TemporaryDirectory(prefix="shifu-browser-") as profile:
        yield [path, *headless, *BROWSER_FLAGS, f"--user-data-dir={profile}"]


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


# Random days: jobs and technicians within about 9 km of the centre, on the day that starts at DAY.
DAY = 1_800_000_000.0
SKILLS = ("install", "repair", "clean")
# Arrival times are whole seconds in ROUTE mode, and route travel times are rounded up to them.
SLACK_S = 61.0


def random_day(
    seed: int, n_jobs: int = 40, n_techs: int = 8
) -> tuple[tuple[Job, ...], tuple[Technician, ...]]:
    rng = np.random.default_rng(seed)

    def point() -> GeoPoint:
        return GeoPoint(31.23 + float(rng.uniform(-0.08, 0.08)), 121.47 + float(rng.uniform(-0.08, 0.08)))

    techs = tuple(
        Technician(
            technician_id=f"t{i}",
            location=point(),
            skills=frozenset(rng.choice(SKILLS, size=int(rng.integers(1, 3)), replace=False).tolist()),
            tier=int(rng.integers(1, 6)),
            max_jobs=int(rng.integers(2, 7)),
            shift=Window(DAY + 8 * HOUR, DAY + float(rng.choice([12, 14, 18])) * HOUR),
            vehicle_capacity=float(rng.choice([0.0, 4.0, 10.0])),
            assigned_jobs=int(rng.integers(0, 2)),
        )
        for i in range(n_techs)
    )
    jobs = []
    for j in range(n_jobs):
        start = DAY + float(rng.uniform(8, 15)) * HOUR
        windowed = rng.random() < 0.7
        pinned = techs[int(rng.integers(n_techs))].technician_id if rng.random() < 0.1 else None
        jobs.append(
            Job(
                job_id=f"j{j}",
                location=point(),
                required_skills=frozenset([str(rng.choice(SKILLS))]) if rng.random() < 0.8 else frozenset(),
                duration_minutes=float(rng.choice([30, 60, 90])),
                window=Window(start, start + float(rng.choice([2, 3, 4])) * HOUR) if windowed else None,
                priority=int(rng.integers(0, 4)),
                demand=float(rng.choice([0.0, 1.0, 3.0, 6.0])),
                pinned_technician_id=pinned,
            )
        )
    return tuple(jobs), techs


def check(problem: Problem, plan: Plan) -> None:
    """Every hard constraint of the problem, on the plan."""
    jobs = {j.job_id: j for j in problem.jobs}
    techs = {t.technician_id: t for t in problem.technicians}
    options = problem.options
    answered = [a.job_id for a in plan.assignments] + [u.job_id for u in plan.unassigned]
    assert sorted(answered) == sorted(jobs), "every job once, assigned or not"
    assert all(u.reason is not None and u.detail for u in plan.unassigned)

    by_tech: dict[str, list] = {}
    for a in plan.assignments:
        by_tech.setdefault(a.technician_id, []).append(a)
    for tech_id, mine in by_tech.items():
        tech = techs[tech_id]
        if tech.max_jobs:
            assert len(mine) + tech.assigned_jobs <= tech.max_jobs, tech_id
        load = 0.0
        for a in mine:
            job = jobs[a.job_id]
            assert job.required_skills <= tech.skills, (a.job_id, tech_id)
            assert job.pinned_technician_id in (None, tech_id), a.job_id
            assert km_between(tech.location, job.location) <= options.max_radius_km + 1e-6, a.job_id
            if tech.vehicle_capacity:
                assert job.demand <= tech.vehicle_capacity + 1e-9, a.job_id
            load += job.demand
            if a.arrival is not None:
                done = a.arrival + 60 * job.duration_minutes
                if job.window is not None:  # an arrival window: the start, and the end when asked
                    assert job.window.start - 1e-6 <= a.arrival <= job.latest_start() + SLACK_S, a.job_id
                if tech.shift is not None:
                    assert tech.shift.start - 1e-6 <= a.arrival and done <= tech.shift.end + SLACK_S, a.job_id
        if options.mode is Mode.ROUTE and tech.vehicle_capacity:
            assert load <= tech.vehicle_capacity + 1e-9, tech_id
        elif options.capacity is Capacity.SHIFT_MINUTES and tech.shift is not None:
            used = sum(
                60 * jobs[a.job_id].duration_minutes
                + 3600 * km_between(tech.location, jobs[a.job_id].location) / options.speed_kmh
                for a in mine
            )
            pauses = 60 * sum(b.duration_minutes for b in tech.breaks)
            assert used <= tech.shift.end - tech.shift.start - pauses + SLACK_S, tech_id
    # In every mode: one job at a time, each reached from the previous one (the first from home), and
    # every break taken, with no work or travel inside it.
    assert_no_double_booking(problem, plan.assignments, SLACK_S)
    with_routes = {r.technician_id for r in plan.routes}
    assert {a.technician_id for a in plan.assignments} <= with_routes, "a route for every working day"
    assert {t.technician_id for t in problem.technicians if t.breaks} <= with_routes, "breaks are planned"
    for route in plan.routes:
        assert list(route.job_ids) == [
            a.job_id
            for a in sorted(plan.assignments, key=lambda a: a.sequence)
            if a.technician_id == route.technician_id
        ], route.technician_id
    assert_breaks_kept(problem, plan.routes, plan.assignments, SLACK_S)
    assert_ends_reached(problem, plan.routes, SLACK_S)


def with_breaks(techs: Sequence[Technician]) -> tuple[Technician, ...]:
    """The technicians of `random_day` with the breaks of a working day: 30 minutes of lunch starting
    between 12:00 and 13:30 for shifts to 14:00 or later, and 15 minutes between 15:30 and 16:30 for
    shifts to 18:00."""
    lunch = Break(Window(DAY + 12 * HOUR, DAY + 13.5 * HOUR), 30.0)
    tea = Break(Window(DAY + 15.5 * HOUR, DAY + 16.5 * HOUR), 15.0)
    return tuple(
        dataclasses.replace(
            t,
            breaks=tuple(
                b for b in (lunch, tea) if t.shift and b.window.end + 60 * b.duration_minutes <= t.shift.end
            ),
        )
        for t in techs
    )


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


# A small recommender artifact: N_ITEMS items (sofas and lamps in turn, then filters), N_USERS users,
# random components (ALS with K factors, LightFM with D dimensions).
N_ITEMS, N_USERS, K, D = 40, 6, 4, 3
CATEGORIES = np.array(["sofa" if i % 2 else "lamp" for i in range(N_ITEMS)], dtype="<U6")
CATEGORIES[30:] = "filter"
CONTENT_FEATURES = [
    *(f"category:{c}" for c in ("sofa", "lamp", "filter")),
    *(f"brand:brand{b}" for b in range(4)),
    "tag:oak",
    "tag:nordic",
]


def make_artifact(
    seed: int = 0,
    weights: dict[str, float] | None = None,
    novelty: float = 0.0,
    visitor_weights: dict[str, float] | None = None,
) -> RecommenderArtifact:
    rng = np.random.default_rng(seed)
    history = sp.random(N_USERS, N_ITEMS, density=0.1, random_state=seed, format="csr", dtype=np.float32)
    history.data = np.round(history.data * 10 + 1)
    history.sort_indices()
    features = ["user:u0", "city:shanghai", "scene:new_home", "touchpoint:home_feed"]
    user_features = sp.csr_matrix(np.array([[1, 1, 0, 0]] + [[0, 0, 0, 0]] * (N_USERS - 1), dtype=np.float32))
    blend = weights or {"als": 1.0}
    als = Als(
        rng.normal(size=(N_USERS, K)).astype(np.float32),
        rng.normal(size=(N_ITEMS, K)).astype(np.float32),
        0.1,
        5.0,
    )
    ease = Ease(rng.normal(size=(N_ITEMS, N_ITEMS)).astype(np.float32), 8.0, 100.0)
    lightfm = LightFM(
        {
            "item_embeddings": rng.normal(size=(N_ITEMS, D)).astype(np.float32),
            "item_bias": rng.normal(size=N_ITEMS).astype(np.float32),
            "feature_names": np.array(features),
            "feature_embeddings": rng.normal(size=(len(features), D)).astype(np.float32),
            "feature_bias": np.zeros(len(features), dtype=np.float32),
            "user_feature_indptr": user_features.indptr.astype(np.int64),
            "user_feature_indices": user_features.indices.astype(np.int32),
            "content_names": np.array(CONTENT_FEATURES),
            "content_embeddings": rng.normal(size=(len(CONTENT_FEATURES), D)).astype(np.float32),
            "content_bias": np.zeros(len(CONTENT_FEATURES), dtype=np.float32),
        }
    )
    popularity = Popularity(
        {
            "overall": np.linspace(1.0, 0.0, N_ITEMS).astype(np.float32),
            "scene_names": np.array(["new_home"]),
            "per_scene": np.linspace(0.0, 1.0, N_ITEMS, dtype=np.float32)[None, :],
            "city_names": np.array(["shanghai"]),
            "per_city": (np.arange(N_ITEMS) % 7 == 0).astype(np.float32)[None, :],
        }
    )
    return RecommenderArtifact(
        item_ids=np.array([f"i{i}" for i in range(N_ITEMS)]),
        item_titles=np.array([f"Item {i}" for i in range(N_ITEMS)]),
        item_categories=CATEGORIES,
        item_brands=np.array([f"brand{i % 4}" for i in range(N_ITEMS)]),
        item_tags=np.array(["" if i % 2 else "oak|nordic" for i in range(N_ITEMS)]),
        item_prices=np.where(np.arange(N_ITEMS) == 3, np.nan, np.arange(N_ITEMS) * 10.0),
        item_in_stock=np.arange(N_ITEMS) % 5 != 0,
        user_ids=np.array([f"u{u}" for u in range(N_USERS)]),
        user_cities=np.array(["shanghai"] + [""] * (N_USERS - 1)),
        history_indptr=history.indptr.astype(np.int64),
        history_indices=history.indices.astype(np.int32),
        history_confidence=history.data.astype(np.float32),
        history_ordered=history.data >= 8,
        session_confidence=np.array(2.0),
        blend_weights=np.array([blend.get(c, 0.0) for c in NAMES]),
        blend_novelty=np.array(novelty),
        blend_visitor_weights=np.array([(visitor_weights or blend).get(c, 0.0) for c in NAMES]),
        components={"als": als, "ease": ease, "lightfm": lightfm, "popularity": popularity},
    )


def ids(items) -> list[str]:
    return [i.item_id for i in items]


def orders_matrix(orders: list[list[int]], n_items: int) -> sp.csr_matrix:
    """Users × items, 1 where the user ordered the item: each list is one user's orders."""
    rows = np.repeat(np.arange(len(orders)), [len(o) for o in orders])
    return sp.csr_matrix((np.ones(rows.size), (rows, np.concatenate(orders))), shape=(len(orders), n_items))


def shop_features(categories: np.ndarray, brands: np.ndarray, tags: np.ndarray) -> list[list[str]]:
    """The content features of a hand-made shop without prices."""
    return content.catalog_features(categories, brands, np.full(categories.size, np.nan), tags)


def kill_mid_stream(
    process: subprocess.Popen, calls: Iterable[Callable[[], Sequence[str]]], enough: int
) -> list[str]:
    """Runs `calls` one after another on a thread and kill -9s the server's whole process group once
    `enough` ids are acknowledged (not after a fixed time: a fast machine sends everything first);
    returns what was acknowledged. A call refused or cut off ends the stream."""
    acknowledged: list[str] = []
    stop, under_way = threading.Event(), threading.Event()

    def send() -> None:
        for call in calls:
            if stop.is_set():
                return
            try:
                acknowledged.extend(call())
            except grpc.RpcError:
                return
            if len(acknowledged) >= enough:
                under_way.set()

    sender = threading.Thread(target=send)
    sender.start()
    assert under_way.wait(timeout=120)
    os.killpg(process.pid, signal.SIGKILL)  # every process of the server at once
    process.wait()
    stop.set()
    sender.join()
    return acknowledged
