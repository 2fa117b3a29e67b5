"""The storefront's catalog changes, kept durably in an embedded SQLite file (WAL mode) under the
service's state directory: every server process on the host reads and writes the same file, a change
is on disk when `apply` returns, and `python -m training export-catalog` reads it back.

Each write batch gets the next number of a counter (`version`), so a process learns what changed since
it last looked with one indexed query.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from models.recommend.catalog import ItemChange

SCHEMA = """
CREATE TABLE IF NOT EXISTS catalog_changes (
    item_id TEXT PRIMARY KEY,
    change TEXT NOT NULL,          -- the merged ItemChange as JSON (fields never set are absent)
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS catalog_changes_version ON catalog_changes (version);
CREATE TABLE IF NOT EXISTS catalog_version (only INTEGER PRIMARY KEY CHECK (only = 0), version INTEGER);
INSERT OR IGNORE INTO catalog_version VALUES (0, 0);
"""
STATE_FILE = "state.db"  # under the service's --state-dir: the live catalog, event ids and sessions
BUSY_TIMEOUT_S = 10.0  # another process's write holds the file this long at most


def connect(path: Path, durable: bool = True) -> sqlite3.Connection:
    """A connection in WAL mode (readers never wait for the writer). `durable`: fsync at every commit,
    so that a commit survives the machine, not only the process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    return connection


def _to_json(change: ItemChange) -> str:
    said = {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in vars(change).items()
        if name != "item_id" and value is not None and not (name == "deleted" and not value)
    }
    return json.dumps(said, sort_keys=True)


def _from_json(item_id: str, text: str) -> ItemChange:
    said = json.loads(text)
    if "tags" in said:
        said["tags"] = tuple(said["tags"])
    return ItemChange(item_id, **said)


class CatalogStore:
    """Thread-safe; one per process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect(path)
        self._lock = threading.Lock()
        with self._lock:
            self._db.executescript(SCHEMA)

    def apply(self, changes: list[ItemChange]) -> int:
        """Merges the changes into what is stored (all or none) and returns the catalog's new version."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                version = self._db.execute("SELECT version FROM catalog_version").fetchone()[0] + 1
                for change in changes:
                    row = self._db.execute(
                        "SELECT change FROM catalog_changes WHERE item_id = ?", (change.item_id,)
                    ).fetchone()
                    merged = _from_json(change.item_id, row[0]).merged(change) if row else change
                    self._db.execute(
                        "INSERT OR REPLACE INTO catalog_changes VALUES (?, ?, ?)",
                        (change.item_id, _to_json(merged), version),
                    )
                self._db.execute("UPDATE catalog_version SET version = ?", (version,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(version)

    def version(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT version FROM catalog_version").fetchone()[0])

    def changes_since(self, version: int) -> tuple[int, dict[str, ItemChange]]:
        """(the catalog's version, the merged change of every item changed after `version`)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                now = self._db.execute("SELECT version FROM catalog_version").fetchone()[0]
                rows = self._db.execute(
                    "SELECT item_id, change FROM catalog_changes WHERE version > ?", (version,)
                ).fetchall()
            finally:
                self._db.execute("COMMIT")
        return int(now), {item_id: _from_json(item_id, text) for item_id, text in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
