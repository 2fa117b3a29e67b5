"""Prometheus metrics, named as the gRPC ecosystem names them (go-grpc-prometheus, grpc-java), plus
Shifu's own: loaded versions, reloads, dispatch solves.

With several worker processes, each writes its samples to files under PROMETHEUS_MULTIPROC_DIR (set by
the parent before the workers start, so prometheus_client picks its multiprocess mode when they import
it) and the parent serves their sum.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    make_wsgi_app,
    multiprocess,
)
from prometheus_client.exposition import ThreadingWSGIServer

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_CALL = ("grpc_type", "grpc_service", "grpc_method")

STARTED = Counter("grpc_server_started_total", "RPCs started on the server.", _CALL)
HANDLED = Counter(
    "grpc_server_handled_total", "RPCs completed on the server, by status code.", (*_CALL, "grpc_code")
)
HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Response latency of RPCs handled by the server, seconds.",
    _CALL,
    buckets=_LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "shifu_grpc_server_in_flight", "RPCs being handled right now.", ("grpc_service", "grpc_method"),
    multiprocess_mode="livesum",
)  # fmt: skip
VERSION = Gauge(
    "shifu_version_loaded",
    "1 for the version of each kind (model, tiers) that is serving.",
    ("kind", "version"),
    multiprocess_mode="livemax",
)
RELOADS = Counter("shifu_version_reloads_total", "Versions loaded or refused, by kind.", ("kind", "result"))
WARNINGS = Counter(
    "shifu_recommend_warnings_total", "Request values the model did not recognise, by code.", ("code",)
)
EVENTS = Counter(
    "shifu_events_total",
    "Events received: recorded, already recorded, and (also counted so) of an item the catalog lacks.",
    ("result",),
)
CATALOG_ITEMS = Gauge(
    "shifu_catalog_items", "Items in the live catalog (not deleted).", multiprocess_mode="livemax"
)
EXPERIMENT_VERSIONS = Gauge(
    "shifu_experiment_versions_loaded",
    "Model versions loaded beside the promoted one because an experiment's arm names them.",
    multiprocess_mode="livemax",
)
EXPOSURES = Counter(
    "shifu_experiment_exposures_total", "Answers given inside an experiment, by arm.", ("experiment", "arm")
)
SOLVES = Counter("shifu_dispatch_solves_total", "Dispatch solves by mode and outcome.", ("mode", "status"))
SOLVE_SECONDS = Histogram(
    "shifu_dispatch_solve_seconds",
    "Wall time of dispatch solves, seconds.",
    ("mode",),
    buckets=_LATENCY_BUCKETS,
)
SOLVES_RUNNING = Gauge(
    "shifu_dispatch_solves_running", "Dispatch solves running right now.", multiprocess_mode="livesum"
)


def version_changed(kind: str, old: str, new: str) -> None:
    if old:
        VERSION.labels(kind, old).set(0)
    VERSION.labels(kind, new).set(1)
    RELOADS.labels(kind, "loaded").inc()


def version_refused(kind: str) -> None:
    RELOADS.labels(kind, "refused").inc()


def registry() -> CollectorRegistry:
    """This process's metrics, or the sum of all worker processes' when in multiprocess mode."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    summed = CollectorRegistry()
    multiprocess.MultiProcessCollector(summed)
    return summed


def only_metrics_path(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """`app` on /metrics; 404 on every other path, so a typo or a scanner gets no metrics by accident."""

    def routed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/metrics":
            return app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: the metrics are on /metrics\n"]

    return routed


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Every scrape would otherwise print a line on stderr, outside the structured logs."""


def serve(host: str, port: int) -> WSGIServer:
    """The /metrics endpoint of this process, or of all worker processes when in multiprocess mode."""
    app = only_metrics_path(make_wsgi_app(registry()))
    try:
        server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
    except OSError as error:
        raise OSError(
            f"cannot serve metrics on {host}:{port} ({error.strerror}); choose --metrics-port"
        ) from None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics on http://%s:%d/metrics", host, port)
    return server


def process_ended(pid: int) -> None:
    """Drops a finished worker's live gauges (multiprocess mode)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
