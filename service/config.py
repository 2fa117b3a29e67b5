"""Service settings: defaults, overridden by SHIFU_* environment variables, overridden by flags."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields
from pathlib import Path

ENV_PREFIX = "SHIFU_"


@dataclass(frozen=True)
class Settings:
    model_dir: Path = Path(".shifu/models")
    tiers_dir: Path = Path(".shifu/tiers")  # technician tiers from `python -m training tiers`
    touchpoints: str = ""  # TOML file of per-touchpoint rules; empty: the same default rules everywhere
    host: str = "127.0.0.1"
    port: int = 50051
    threads: int = 2  # calls handled at once per process: more only contend for the GIL (measured)
    workers: int = 1  # server processes sharing the port (SO_REUSEPORT), one per core at most
    blas_threads: int = 0  # per process; 0: automatic, by catalog size (see service.server.blas_threads)

    poll_seconds: float = 5.0  # how often the model directory is checked for a new version
    grace_seconds: float = 10.0  # how long in-flight calls may take to finish after SIGTERM
    default_time_limit_ms: int = 5000  # dispatch solver limit when the request sets none
    max_message_mb: int = 64  # largest request or response

    log_level: str = "INFO"


def _convert(name: str, text: str) -> object:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        return {"Path": Path, "int": int, "float": float}.get(kind, str)(text)
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
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(
            flag, dest=f.name, default=None, help=f"(env {ENV_PREFIX}{f.name.upper()}, default {f.default})"
        )


def load(args: argparse.Namespace | None = None, environ: dict[str, str] | None = None) -> Settings:
    values = from_environment(environ)
    if args is not None:
        names = {f.name for f in fields(Settings)}
        values.update({k: _convert(k, str(v)) for k, v in vars(args).items() if k in names and v is not None})
    settings = Settings(**values)
    if not 0 <= settings.port <= 65535:
        raise ValueError(f"port {settings.port} is outside 0-65535")
    if settings.threads < 1 or settings.workers < 1:
        raise ValueError("threads and workers must be at least 1")
    if settings.poll_seconds <= 0 or settings.grace_seconds < 0:
        raise ValueError("poll_seconds must be > 0 and grace_seconds >= 0")
    if settings.default_time_limit_ms < 1 or settings.max_message_mb < 1 or settings.blas_threads < 0:
        raise ValueError("default_time_limit_ms and max_message_mb must be >= 1, blas_threads >= 0")

    return settings
