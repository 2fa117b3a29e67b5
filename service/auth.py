"""Bearer tokens and scopes from a TOML file of clients, re-read when it changes.

    [[client]]
    name = "storefront"
    token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    scopes = ["recommend"]

Only the SHA-256 of each token is stored. A presented token is hashed and compared with every stored
hash in constant time, so neither the answer nor its timing tells how close a guess was.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
# console: the web pages, read-only
SCOPES = ("recommend", "dispatch", "catalog", "events", "audiences", "console")
# The scope each service needs; services not named here (health, reflection) are open to everyone.
SCOPE_OF_SERVICE = {
    "shifu.v1.RecommendService": "recommend",
    "shifu.v1.DispatchService": "dispatch",
    "shifu.v1.CatalogService": "catalog",
    "shifu.v1.EventService": "events",
    "shifu.v1.AudienceService": "audiences",
}
OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
RECHECK_SECONDS = 1.0  # how often the file's modification time is looked at
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class AuthFileError(ValueError):
    """The auth file is unreadable or malformed."""


@dataclass(frozen=True)
class Client:
    name: str
    token_sha256: bytes
    scopes: frozenset[str]


@dataclass(frozen=True)
class Decision:
    """`client` is "" when no token was needed or none was valid; `denied` is None when allowed, else
    ("unauthenticated" | "permission_denied", message)."""

    client: str
    denied: tuple[str, str] | None = None


def parse(text: str, where: str) -> tuple[Client, ...]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise AuthFileError(f"{where}: {error}") from error
    unknown = set(document) - {"client"}
    if unknown:
        raise AuthFileError(f"{where}: unknown table(s) {', '.join(sorted(unknown))}; use [[client]]")
    clients: list[Client] = []
    for i, entry in enumerate(document.get("client", [])):
        path = f"{where}: client[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"name", "token_sha256", "scopes"}:
            raise AuthFileError(f"{path}: needs exactly name, token_sha256 and scopes")
        name, digest, scopes = entry.get("name"), entry.get("token_sha256"), entry.get("scopes")
        if not isinstance(name, str) or not name:
            raise AuthFileError(f"{path}.name: must be a non-empty string")
        if not isinstance(digest, str) or not _HEX64.match(digest.lower()):
            raise AuthFileError(f"{path}.token_sha256: must be 64 hex digits (the SHA-256 of the token)")
        if not isinstance(scopes, list) or not all(s in SCOPES for s in scopes):
            raise AuthFileError(f"{path}.scopes: must be a list of {', '.join(SCOPES)}")
        if any(c.name == name for c in clients):
            raise AuthFileError(f"{path}.name: {name!r} appears twice")
        clients.append(Client(name, bytes.fromhex(digest), frozenset(scopes)))
    return tuple(clients)


class Authenticator:
    """Decides whether a call's metadata may call a service. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._clients = parse(self._read(), str(path))  # at start, a bad file is an error
        self._checked = time.monotonic()
        log.info("auth: %d client(s) from %s", len(self._clients), path)

    def _stat(self) -> tuple[int, int]:
        try:
            info = os.stat(self.path)
        except OSError as error:
            raise AuthFileError(f"{self.path}: {error.strerror}") from None
        return info.st_mtime_ns, info.st_size

    def _read(self) -> str:
        try:
            return self.path.read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise AuthFileError(f"{self.path}: {error}") from None

    def _refresh(self) -> None:
        """Re-reads the file when it changed; a file that became invalid leaves the clients as they were."""
        now = time.monotonic()
        if now - self._checked < RECHECK_SECONDS:
            return
        with self._lock:
            if now - self._checked < RECHECK_SECONDS:
                return
            self._checked = now
            try:
                stamp = self._stat()
                if stamp == self._stamp:
                    return
                self._clients = parse(self._read(), str(self.path))
                self._stamp = stamp
                log.info("auth: re-read %s, %d client(s)", self.path, len(self._clients))
            except AuthFileError as error:
                log.error("auth: keeping the previous clients: %s", error)

    def decide(self, service: str, metadata: tuple[tuple[str, str | bytes], ...]) -> Decision:
        if service in OPEN_SERVICES:
            return Decision("")
        token = _bearer(metadata)
        if token is None:
            return Decision("", ("unauthenticated", "missing 'authorization: Bearer <token>' metadata"))
        return self.decide_token(token, SCOPE_OF_SERVICE.get(service))

    def decide_token(self, token: str, needed: str | None) -> Decision:
        """Whether `token` belongs to a client with scope `needed` (None: any client)."""
        self._refresh()
        client = self._match(hashlib.sha256(token.encode()).digest())
        if client is None:
            return Decision("", ("unauthenticated", "unknown token"))
        if needed is not None and needed not in client.scopes:
            return Decision(
                client.name, ("permission_denied", f"client {client.name!r} lacks scope {needed!r}")
            )
        return Decision(client.name)

    def _match(self, digest: bytes) -> Client | None:
        found = None
        for client in self._clients:  # no early exit: the time does not depend on which one matched
            if hmac.compare_digest(client.token_sha256, digest):
                found = client
        return found


def _bearer(metadata: tuple[tuple[str, str | bytes], ...]) -> str | None:
    for key, value in metadata:
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None
