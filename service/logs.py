"""Structured logs: one JSON object per line, carrying the request id of the call being served.

Audit events (every dispatch call, every model or tier version change) go to the `shifu.audit` logger
with their fields under `event`. End-customer ids never appear in clear: `hash_id` is what logs carry.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import sys
import time
from typing import Any

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
audit_log = logging.getLogger("shifu.audit")


def hash_id(value: str) -> str:
    """A stable pseudonym of an end-customer id for logs (SHA-256, first 16 hex digits)."""
    return hashlib.sha256(value.encode()).hexdigest()[:16] if value else ""


def audit(event: str, **fields: Any) -> None:
    audit_log.info(event, extra={"event": {"type": event, **fields}})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", "") or request_id.get()
        if rid:
            entry["request_id"] = rid
        event = getattr(record, "event", None)
        if isinstance(event, dict):
            entry.update(event)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(processName)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        event = getattr(record, "event", None)
        rid = request_id.get()
        extras = ([f"request_id={rid}"] if rid else []) + (
            [f"{k}={v}" for k, v in event.items() if k != "type"] if isinstance(event, dict) else []
        )
        return text + (" " + " ".join(extras) if extras else "")


def configure(level: str, form: str) -> None:
    """The root logger writes to stderr in `form` (json or text)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if form == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
