"""The gRPC server: services, health, reflection, model watching, graceful shutdown."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from threadpoolctl import threadpool_limits

from models.recommend import touchpoints
from models.recommend.recommender import Recommender
from service.config import Settings
from service.dispatch_handler import DispatchHandler
from service.pb.shifu.v1 import dispatch_pb2, dispatch_pb2_grpc, recommend_pb2, recommend_pb2_grpc
from service.recommend_handler import RecommendHandler
from service.registry import VersionRegistry, recommender_registry, tier_registry

log = logging.getLogger(__name__)
LARGE_CATALOG = 50_000  # items; see blas_threads
SWITCH_INTERVAL_S = 0.0005

RECOMMEND = recommend_pb2.DESCRIPTOR.services_by_name["RecommendService"].full_name
DISPATCH = dispatch_pb2.DESCRIPTOR.services_by_name["DispatchService"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    registry: VersionRegistry
    tiers: VersionRegistry
    health: health.HealthServicer
    settings: Settings

    def shutdown(self) -> None:
        """Health goes NOT_SERVING, new calls are refused, in-flight calls get `grace_seconds` to finish."""
        log.info("shutting down: draining in-flight calls for up to %.1f s", self.settings.grace_seconds)
        self.health.enter_graceful_shutdown()
        self.server.stop(self.settings.grace_seconds).wait()
        self.registry.stop()
        self.tiers.stop()
        log.info("stopped")


def start(settings: Settings) -> RunningServer:
    """Starts serving in the background; returns once the port is bound (port 0 picks a free one)."""
    threadpool_limits(blas_threads(settings, n_items=0))
    # A call's thread gives way to gRPC's own threads within this long, not Python's default 5 ms,
    # which otherwise shows up whole in the tail latency.
    sys.setswitchinterval(SWITCH_INTERVAL_S)

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="rpc"),
        options=[
            ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
            # Road-distance matrices of a city are tens of MB; gRPC's default would refuse them at 4 MB.
            ("grpc.max_receive_message_length", settings.max_message_mb * 1024 * 1024),
            ("grpc.max_send_message_length", settings.max_message_mb * 1024 * 1024),
        ],
    )
    health_servicer = health.HealthServicer(experimental_non_blocking=True)

    def on_model(model: Recommender) -> None:
        threadpool_limits(blas_threads(settings, model.n_items))
        health_servicer.set(RECOMMEND, SERVING)
        health_servicer.set("", SERVING)

    rules = touchpoints.load(Path(settings.touchpoints)) if settings.touchpoints else None
    registry = recommender_registry(settings.model_dir, on_change=on_model, rules=rules)
    tier_table = tier_registry(settings.tiers_dir)
    recommend_pb2_grpc.add_RecommendServiceServicer_to_server(RecommendHandler(registry), server)
    dispatch_pb2_grpc.add_DispatchServiceServicer_to_server(
        DispatchHandler(settings.default_time_limit_ms, tier_table), server
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            RECOMMEND,
            DISPATCH,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    # The dispatcher needs no model; the recommender, and so the whole, only once a version is loaded.
    health_servicer.set(DISPATCH, SERVING)
    health_servicer.set(RECOMMEND, NOT_SERVING)
    health_servicer.set("", NOT_SERVING)

    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        raise OSError(f"cannot bind {settings.host}:{settings.port}")
    server.start()
    registry.start(settings.poll_seconds)
    tier_table.start(settings.poll_seconds)
    log.info("serving on %s:%d, models from %s", settings.host, port, settings.model_dir)
    return RunningServer(server, port, registry, tier_table, health_servicer, settings)


def blas_threads(settings: Settings, n_items: int) -> int:
    """BLAS threads per process. On a small catalog a call's matrix products are tiny and threads only
    spin against the calls served beside them: one. On a large one, scoring reads the item matrices
    (tens of MB) from memory, and splitting that read over the cores cuts latency: the cores each
    worker process may have."""
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


def serve_workers(settings: Settings) -> None:
    """`settings.workers` processes on one port (SO_REUSEPORT): the kernel spreads connections over
    them, so every core serves, which threads in one Python process cannot do."""
    if settings.workers == 1:
        serve(settings)
        return
    if settings.port == 0:
        raise ValueError("several workers need a fixed port, not 0")
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_worker, args=(settings,), name=f"worker-{i}") for i in range(settings.workers)
    ]
    for child in children:
        child.start()

    def forward(_signum: int, _frame: object) -> None:
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: each worker drains its own calls

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        child.join()


def _worker(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(processName)s %(levelname)s %(message)s"
    )
    serve(settings)
