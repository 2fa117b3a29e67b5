"""Service settings: defaults, overridden by SHIFU_* environment variables, overridden by flags."""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass, fields
from pathlib import Path

from models import flags

ENV_PREFIX = "SHIFU_"
SERVICES = ("recommend", "dispatch")


@dataclass(frozen=True)
class Settings:
    model_dir: Path = Path(".shifu/models")
    tiers_dir: Path = Path(".shifu/tiers")  # technician tiers from `python -m training tiers`
    audiences: str = ""  # audience sets of `python -m training audiences` (served, and shown by the console)
    touchpoints: str = ""  # TOML file of per-touchpoint rules; empty: the same default rules everywhere
    experiments: str = ""  # TOML file of experiments per touchpoint, re-read when it changes; empty: none
    services: str = "recommend,dispatch"  # which services this server answers (split a deployment)
    host: str = "127.0.0.1"
    port: int = 50051
    threads: int = 2  # Recommend calls handled at once per process: more only contend for the GIL
    workers: int = 1  # server processes sharing the port (SO_REUSEPORT), one per core at most
    blas_threads: int = 0  # per process; 0: automatic, by catalog size (see service.server.blas_threads)
    max_concurrent_rpcs: int = 512  # calls accepted at once per process; beyond: RESOURCE_EXHAUSTED

    max_solves: int = 0  # dispatch solves at once per process, each in its own processes; 0: the cores
    solve_queue_seconds: float = 1.0  # how long a solve may wait for a free slot (within its deadline)
    solver_niceness: int = 10  # OS priority of the solver processes below the server's (0: the same)
    default_time_limit_ms: int = 5000  # dispatch solver limit when the request sets none

    state_dir: Path = Path("")  # the live catalog and event index (SQLite); empty: "state" beside model_dir
    events_dir: Path = Path("")  # recorded events, daily JSON Lines partitions; empty: state_dir/events
    catalog_poll_seconds: float = 0.2  # how often each process looks for catalog changes (visible within)

    poll_seconds: float = 5.0  # how often the model directory is checked for a new version
    grace_seconds: float = 10.0  # how long in-flight calls may take to finish after SIGTERM
    max_message_mb: int = 64  # largest request or response

    tls_cert: str = ""  # PEM certificate chain; with tls_key: TLS
    tls_key: str = ""  # PEM private key
    tls_client_ca: str = ""  # PEM CA bundle; with it, clients must present a certificate it signed (mTLS)
    auth_file: str = ""  # TOML file of clients, token hashes and scopes; empty: no token check
    insecure: bool = False  # allow a non-loopback address without TLS and tokens (logged as a warning)

    metrics_port: int = 9464  # Prometheus metrics on host:metrics_port; 0: off
    console_port: int = 0  # the operator console (read-only web pages) on host:console_port; 0: off
    log_level: str = "INFO"
    log_format: str = "json"  # json (one object per line) or text

    def service_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.services.split(",") if name.strip())

    def state(self) -> Path:
        return self.state_dir if str(self.state_dir) not in ("", ".") else self.model_dir.parent / "state"

    def events(self) -> Path:
        return self.events_dir if str(self.events_dir) not in ("", ".") else self.state() / "events"

    def solves(self) -> int:
        return self.max_solves or max(1, os.cpu_count() or 1)

    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name other than localhost may resolve to anything
            return False


def _convert(name: str, text: str) -> object:
    try:
        return flags.parse_text(Settings, name, text)
    except ValueError as error:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={text!r}: {error}") from error


def from_environment(environ: dict[str, str] | None = None) -> dict[str, object]:
    environ = dict(os.environ if environ is None else environ)
    found = {}
    for f in fields(Settings):
        key = ENV_PREFIX + f.name.upper()
        if key in environ:
            found[f.name] = _convert(f.name, environ[key])
    return found


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flags.add_flags(parser, Settings, describe=lambda f: f"(env {ENV_PREFIX}{f.name.upper()})")


def load(args: argparse.Namespace | None = None, environ: dict[str, str] | None = None) -> Settings:
    values = from_environment(environ)
    if args is not None:
        values.update(flags.values(Settings, args))
    settings = Settings(**values)  # type: ignore[arg-type]
    check(settings)
    return settings


def check(settings: Settings) -> None:
    """Raises ValueError naming the first impossible setting."""
    if not all(0 <= p <= 65535 for p in (settings.port, settings.metrics_port, settings.console_port)):
        raise ValueError("port, metrics_port and console_port must be in 0-65535")
    if settings.threads < 1 or settings.workers < 1 or settings.max_concurrent_rpcs < 1:
        raise ValueError("threads, workers and max_concurrent_rpcs must be at least 1")
    if settings.catalog_poll_seconds <= 0:
        raise ValueError("catalog_poll_seconds must be > 0")
    if settings.poll_seconds <= 0 or settings.grace_seconds < 0 or settings.solve_queue_seconds < 0:
        raise ValueError("poll_seconds must be > 0, grace_seconds and solve_queue_seconds >= 0")
    if settings.default_time_limit_ms < 1 or settings.max_message_mb < 1 or settings.blas_threads < 0:
        raise ValueError("default_time_limit_ms and max_message_mb must be >= 1, blas_threads >= 0")
    if settings.max_solves < 0 or not 0 <= settings.solver_niceness <= 19:
        raise ValueError("max_solves must be >= 0 and solver_niceness in 0-19")
    names = settings.service_names()
    if not names or any(name not in SERVICES for name in names):
        raise ValueError(
            f"services must name one or more of {', '.join(SERVICES)}, got {settings.services!r}"
        )
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ValueError("tls_cert and tls_key go together")
    if settings.tls_client_ca and not settings.tls_cert:
        raise ValueError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
    if settings.log_format not in ("json", "text"):
        raise ValueError(f"log_format must be json or text, got {settings.log_format!r}")
    if (
        not settings.is_loopback()
        and not settings.insecure
        and not (settings.tls_cert and settings.auth_file)
    ):
        raise ValueError(
            f"host {settings.host} is not a loopback address: serving it needs --tls-cert, --tls-key and "
            "--auth-file (or --insecure, to accept plaintext without tokens)"
        )
