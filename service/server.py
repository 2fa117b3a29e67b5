"""The gRPC server: services, health, reflection, model watching, graceful shutdown."""

from __future__ import annotations

import dataclasses
import functools
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sqlite3
import sys
import tempfile
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from threadpoolctl import threadpool_limits

from models.audiences.audience_set import AudienceSet
from models.dispatch.tiers import TierTable
from models.recommend import touchpoints
from models.recommend.catalog_store import STATE_FILE, CatalogStore
from models.recommend.recommender import Recommender
from service import logs, metrics
from service import reflection as method_reflection
from service.audience_handler import SERVICE as AUDIENCES
from service.audience_handler import AudienceHandler, audience_registry
from service.auth import Authenticator
from service.catalog_handler import CatalogHandler
from service.config import Settings
from service.console import web as console
from service.console.pages import Sources
from service.dispatch_handler import DispatchHandler
from service.event_handler import EventHandler
from service.event_log import EventLog
from service.experiments import LiveExperiments
from service.interceptors import EdgeInterceptor
from service.live_catalog import LiveRecommender
from service.pb.shifu.v1 import (
    audiences_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    dispatch_pb2,
    dispatch_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    recommend_pb2,
    recommend_pb2_grpc,
)
from service.recommend_handler import RecommendHandler
from service.registry import VersionRegistry, recommender_registry, tier_registry
from service.solver_pool import SolverPool

log = logging.getLogger(__name__)
LARGE_CATALOG = 50_000  # items; see blas_threads
SWITCH_INTERVAL_S = 0.0005
WARM_UP_TIMEOUT_S = 60.0

RECOMMEND = recommend_pb2.DESCRIPTOR.services_by_name["RecommendService"].full_name
DISPATCH = dispatch_pb2.DESCRIPTOR.services_by_name["DispatchService"].full_name
CATALOG = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name
EVENTS = events_pb2.DESCRIPTOR.services_by_name["EventService"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    registry: VersionRegistry[Recommender]
    tiers: VersionRegistry[TierTable]
    health: health.HealthServicer
    settings: Settings
    pools: list[futures.ThreadPoolExecutor]
    solvers: SolverPool
    metrics_server: WSGIServer | None
    live: LiveRecommender | None = None
    events: EventLog | None = None
    experiments: LiveExperiments | None = None
    console: console.ConsoleServer | None = None
    audiences: VersionRegistry[AudienceSet] | None = None

    def shutdown(self) -> None:
        """Health goes NOT_SERVING, new calls are refused, in-flight calls get `grace_seconds` to finish;
        then the solver processes, the executors and the metrics endpoint stop."""
        log.info("shutting down: draining in-flight calls for up to %.1f s", self.settings.grace_seconds)
        self.health.enter_graceful_shutdown()
        self.server.stop(self.settings.grace_seconds).wait()
        self.registry.stop()
        self.tiers.stop()
        if self.audiences is not None:
            self.audiences.stop()
        if self.experiments is not None:
            self.experiments.stop()
        if self.live is not None:
            self.live.stop()
            self.live.store.close()
        if self.events is not None:
            self.events.close()
        self.solvers.shutdown()
        for pool in self.pools:
            pool.shutdown(wait=False, cancel_futures=True)
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
        if self.console is not None:
            self.console.stop()
        log.info("stopped")


def _credentials(settings: Settings) -> grpc.ServerCredentials | None:
    if not settings.tls_cert:
        return None
    try:
        key, cert = Path(settings.tls_key).read_bytes(), Path(settings.tls_cert).read_bytes()
        client_ca = Path(settings.tls_client_ca).read_bytes() if settings.tls_client_ca else None
    except OSError as error:
        raise OSError(f"cannot read TLS files: {error}") from None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


# The storefront's services go together: the catalog and the events feed what Recommend answers.
WANTED_BY = {RECOMMEND: "recommend", CATALOG: "recommend", EVENTS: "recommend", DISPATCH: "dispatch"}


class _Health:
    """The health service's answers: each service's own status, and the whole server's (the name "")
    SERVING when every service it answers is."""

    def __init__(self, served: list[str]) -> None:
        self.servicer = health.HealthServicer(experimental_non_blocking=True)
        self.served = served
        self._statuses: dict[str, int] = {}

    def set(self, name: str, status: int) -> None:
        self._statuses[name] = status
        self.servicer.set(name, status)
        ready = all(self._statuses.get(served) == SERVING for served in self.served)
        self.servicer.set("", SERVING if ready else NOT_SERVING)


def start(settings: Settings) -> RunningServer:
    """Starts serving in the background; returns once the port is bound (port 0 picks a free one)."""
    _tune_process(settings)
    services = settings.service_names()
    auth = _authenticator(settings)
    pools = _pools(settings)
    server = _grpc_server(settings, auth, pools)
    status = _Health([name for name, wanted in WANTED_BY.items() if wanted in services])
    rules = touchpoints.load(Path(settings.touchpoints)) if settings.touchpoints else None
    registry = recommender_registry(
        settings.model_dir, on_change=functools.partial(_model_loaded, settings, status), rules=rules
    )
    tier_table = tier_registry(settings.tiers_dir)
    solvers = SolverPool(settings.solves() if "dispatch" in services else 0, settings.solver_niceness)
    audiences = audience_registry(Path(settings.audiences)) if settings.audiences else None
    live, events, trials = (
        _add_storefront(settings, server, registry, status, rules, audiences)
        if "recommend" in services
        else (None, None, None)
    )
    if "dispatch" in services:
        _add_dispatch(settings, server, tier_table, solvers, status)
    if audiences is not None:
        audiences_pb2_grpc.add_AudienceServiceServicer_to_server(AudienceHandler(audiences), server)
    health_pb2_grpc.add_HealthServicer_to_server(status.servicer, server)
    method_reflection.enable(
        (
            *status.served,
            *([AUDIENCES] if audiences else []),
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        ),
        server,
    )
    credentials = _credentials(settings)
    port = _bind(server, f"{settings.host}:{settings.port}", credentials)
    metrics_server = metrics.serve(settings.host, settings.metrics_port) if settings.metrics_port else None
    _start_serving(settings, server, registry, tier_table, live, solvers, status)
    console_server = console.serve(settings, Sources(settings, live)) if settings.console_port else None
    if audiences is not None:
        audiences.start(settings.poll_seconds)
    if trials is not None:
        trials.start()  # after the first version is loaded: the arms' models are built at once
    log.info(
        "serving %s on %s:%d (%s), models from %s",
        ", ".join(services), settings.host, port, "TLS" if credentials else "plaintext", settings.model_dir,
    )  # fmt: skip
    return RunningServer(
        server, port, registry, tier_table, status.servicer, settings,
        list(dict.fromkeys(pools.values())), solvers, metrics_server, live, events, trials, console_server,
        audiences,
    )  # fmt: skip


def _tune_process(settings: Settings) -> None:
    threadpool_limits(blas_threads(settings, n_items=0))
    # A call's thread gives way to gRPC's own threads within this long, not Python's default 5 ms,
    # which otherwise shows up whole in the tail latency.
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def _authenticator(settings: Settings) -> Authenticator | None:
    if not settings.is_loopback() and settings.insecure and not (settings.tls_cert and settings.auth_file):
        log.warning("serving %s without TLS or tokens (--insecure)", settings.host)
    return Authenticator(Path(settings.auth_file)) if settings.auth_file else None


def _pools(settings: Settings) -> dict[str, futures.ThreadPoolExecutor]:
    """Each service's executor: dispatch calls that wait for their solves never hold the threads
    Recommend needs. gRPC's own pool serves health and reflection."""
    recommend_pool = futures.ThreadPoolExecutor(settings.threads, thread_name_prefix="recommend")
    # Room for calls waiting for a solver lane (they give up after solve_queue_seconds) and for
    # RankTechnicians beside the solves.
    dispatch_pool = futures.ThreadPoolExecutor(2 * settings.solves() + 4, thread_name_prefix="dispatch")
    # Catalog changes and events wait for the disk (fsync): never on the threads Recommend needs.
    intake_pool = futures.ThreadPoolExecutor(4, thread_name_prefix="intake")
    return {RECOMMEND: recommend_pool, DISPATCH: dispatch_pool, CATALOG: intake_pool, EVENTS: intake_pool}


def _grpc_server(
    settings: Settings, auth: Authenticator | None, pools: dict[str, futures.ThreadPoolExecutor]
) -> grpc.Server:
    return grpc.server(
        futures.ThreadPoolExecutor(2, thread_name_prefix="rpc"),
        interceptors=[EdgeInterceptor(auth, pools)],
        options=[
            ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
            # Road-distance matrices of a city are tens of MB; gRPC's default would refuse them at 4 MB.
            ("grpc.max_receive_message_length", settings.max_message_mb * 1024 * 1024),
            ("grpc.max_send_message_length", settings.max_message_mb * 1024 * 1024),
        ],
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )


def _model_loaded(settings: Settings, status: _Health, model: Recommender) -> None:
    # A version with a retrieval graph scores a few hundred candidates a call, not its catalog.
    threadpool_limits(blas_threads(settings, model.n_items if model.scorer.retrieval is None else 0))
    status.set(RECOMMEND, SERVING)
    status.set(CATALOG, SERVING)


def _add_storefront(
    settings: Settings,
    server: grpc.Server,
    registry: VersionRegistry[Recommender],
    status: _Health,
    rules: touchpoints.TouchpointRules | None,
    audiences: VersionRegistry[AudienceSet] | None,
) -> tuple[LiveRecommender, EventLog, LiveExperiments | None]:
    """Recommend, Catalog and Events on the live catalog, the event log and the experiments."""
    store, events = open_state(settings)
    live = LiveRecommender(registry, store)
    trials = (
        LiveExperiments(
            Path(settings.experiments), live, settings.model_dir, rules or touchpoints.TouchpointRules()
        )
        if settings.experiments
        else None
    )
    recommend_pb2_grpc.add_RecommendServiceServicer_to_server(
        RecommendHandler(live, events, trials, audiences), server
    )
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogHandler(live), server)
    events_pb2_grpc.add_EventServiceServicer_to_server(EventHandler(events, live), server)
    for name in (RECOMMEND, CATALOG):
        status.set(name, NOT_SERVING)  # until a version is loaded
    status.set(EVENTS, SERVING)
    return live, events, trials


def _add_dispatch(
    settings: Settings,
    server: grpc.Server,
    tiers: VersionRegistry[TierTable],
    solvers: SolverPool,
    status: _Health,
) -> None:
    handler = DispatchHandler(settings.default_time_limit_ms, tiers, solvers, settings.solve_queue_seconds)
    dispatch_pb2_grpc.add_DispatchServiceServicer_to_server(handler, server)
    status.set(DISPATCH, NOT_SERVING)  # until the solver processes are up


def _bind(server: grpc.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    """The port bound; OSError naming the address when it cannot be."""
    try:
        port = (
            server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
        )
    except RuntimeError:
        port = 0
    if port == 0:
        raise OSError(
            f"cannot bind {address}: the port is in use or the address is not this machine's; choose --port"
        )
    return port


def _start_serving(
    settings: Settings,
    server: grpc.Server,
    registry: VersionRegistry[Recommender],
    tiers: VersionRegistry[TierTable],
    live: LiveRecommender | None,
    solvers: SolverPool,
    status: _Health,
) -> None:
    """The server, the watchers of models and tiers, then the solver processes."""
    server.start()
    if live is not None:
        registry.start(settings.poll_seconds)
        live.start(settings.catalog_poll_seconds)
    tiers.start(settings.poll_seconds)
    if DISPATCH in status.served:
        # The solver processes start and import the solvers before Dispatch says SERVING, so that no
        # call pays for that within its time limit.
        futures.wait(solvers.warm_up(), timeout=WARM_UP_TIMEOUT_S)
        status.set(DISPATCH, SERVING)


def blas_threads(settings: Settings, n_items: int) -> int:
    """BLAS threads per process, for calls that score `n_items` items in full. On a small catalog (or
    candidates retrieved from a large one) a call's matrix products are tiny and threads only spin
    against the calls served beside them: one (on 200,000 retrieved items, two threads took p99 from
    about 6 to 8 ms). Scoring a large catalog in full reads the item matrices (tens of MB) from memory,
    and splitting that read over the cores cuts latency: the cores each worker process may have."""
    if settings.blas_threads:
        return settings.blas_threads
    if n_items < LARGE_CATALOG:
        return 1
    return max(1, (os.cpu_count() or 1) // settings.workers)


def serve(settings: Settings) -> None:
    """Runs until SIGTERM or SIGINT, then drains and exits."""
    running = start(settings)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stopping.wait()
    running.shutdown()


def open_state(settings: Settings) -> tuple[CatalogStore, EventLog]:
    """The live catalog and the event log under the state directory; OSError naming the file when it
    cannot be used (unreadable, not a database, a folder without write access), not a traceback."""
    path = settings.state() / STATE_FILE
    try:
        store = CatalogStore(path)
    except (OSError, sqlite3.Error) as error:
        raise OSError(f"cannot open the live catalog {path}: {error} (see --state-dir)") from None
    try:
        return store, EventLog(settings.events(), path)
    except (OSError, RuntimeError, sqlite3.Error) as error:
        store.close()
        raise OSError(
            f"cannot open the event log in {settings.events()}: {error} (see --events-dir)"
        ) from None


def serve_workers(settings: Settings) -> None:
    """`settings.workers` processes on one port (SO_REUSEPORT): the kernel spreads connections over
    them, so every core serves, which threads in one Python process cannot do. This process serves the
    metrics of all of them and starts again a worker that died."""
    if settings.workers == 1:
        serve(settings)
        return
    if settings.port == 0:
        raise ValueError("several workers need a fixed port, not 0")
    if "recommend" in settings.service_names():
        store, events = open_state(settings)  # a broken state stops here, once, not in every worker
        events.close()
        store.close()
    # Set before the workers start, so that their prometheus_client writes to files this process sums.
    os.environ[metrics.MULTIPROC_ENV] = tempfile.mkdtemp(prefix="shifu-metrics-")
    metrics_server = metrics.serve(settings.host, settings.metrics_port) if settings.metrics_port else None
    # The first worker alone serves the console: it reads every worker's metrics from the shared files,
    # but the dispatch plans it shows are its own (docs/console.md).
    worker_settings = dataclasses.replace(settings, metrics_port=0, console_port=0)
    first_settings = dataclasses.replace(worker_settings, console_port=settings.console_port)
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def launch(i: int) -> multiprocessing.process.BaseProcess:
        child = context.Process(
            target=_worker, args=(worker_settings if i else first_settings,), name=f"worker-{i}"
        )
        child.start()
        return child

    children = [launch(i) for i in range(settings.workers)]

    def forward(signum: int, _frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stopping.set()
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: each worker drains its own calls

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while not stopping.is_set():
        multiprocessing.connection.wait([c.sentinel for c in children], timeout=1.0)
        for i, child in enumerate(children):
            if not child.is_alive() and not stopping.is_set():
                log.error("worker-%d ended (exit code %s); starting it again", i, child.exitcode)
                metrics.process_ended(child.pid or 0)
                children[i] = launch(i)
    for child in children:
        child.join()
        metrics.process_ended(child.pid or 0)
    if metrics_server is not None:
        metrics_server.shutdown()


def _worker(settings: Settings) -> None:
    logs.configure(settings.log_level, settings.log_format)
    serve(settings)
