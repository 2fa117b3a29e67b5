"""Durable event intake: batches of storefront events appended to daily JSON Lines partitions in the
event log's format (models/event_format.py: `DIR/YYYY-MM-DD/events-wN.jsonl`, the day of the event in
UTC), which `python -m training train --events DIR` reads as they are.

A batch is acknowledged only after its lines are written and fsynced. Which event ids are on disk is
kept in SQLite beside the files (shared by the server processes of the host), so a retried batch is
not written twice, whichever process takes the retry. The files are the truth: each process appends to
files of its own (a writer slot, held by a file lock), and at start it reads what its slot's files, and
those of every slot no live process holds, hold past the last offset SQLite knows, so that events
fsynced just before a crash count as recorded (whichever process comes back), and cuts a line the crash
left half written (never acknowledged, so the client sends it again).

The same SQLite file keeps each user's last day of events (not impressions), the session of their next
Recommend when it sends none.

Exposures (an answer given inside an experiment) go to `DIR/YYYY-MM-DD/exposures-wN.jsonl` of the same
writer slot. Recommend does not wait for a disk: each line is written to the file (one write(2) on an
O_APPEND descriptor, so in the kernel's hands, and kept through a kill -9 of the process) before the
answer leaves, and a flusher thread fsyncs within FLUSH_SECONDS (so a power loss may lose the last
0.1 s of them). They need no index: recommendation ids are unique.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from pathlib import Path

from models import event_format
from models.event_format import EXPOSURES, SESSION_TYPES, Event, Exposure
from models.recommend.catalog_store import connect

log = logging.getLogger(__name__)

SESSION_SECONDS = 24 * 3600
SESSION_ITEMS = 20  # most recent distinct items of a session
DEDUPE_DAYS = 7  # how long an event id is remembered against retries
PRUNE_EVERY = 200  # batches between removals of expired ids and sessions
MAX_WRITER_SLOTS = 64
FLUSH_SECONDS = 0.1  # how long a written exposure may wait for its fsync

SCHEMA = """
CREATE TABLE IF NOT EXISTS event_ids (event_id TEXT PRIMARY KEY, recorded_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS event_ids_recorded_at ON event_ids (recorded_at);
CREATE TABLE IF NOT EXISTS event_files (path TEXT PRIMARY KEY, offset INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS recent (user_id TEXT NOT NULL, timestamp REAL NOT NULL, item_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS recent_user ON recent (user_id, timestamp);
"""


class EventLog:
    """Thread-safe; one per process."""

    def __init__(self, directory: Path, database: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._slot_lock, self.writer = self._take_slot()
        self._db = connect(database, durable=False)  # the files are fsynced; this index is rebuilt from them
        self._db.executescript(SCHEMA)
        self._local = threading.local()
        self._database = database
        self._lock = threading.Lock()
        self._batches = 0
        self._recover_unheld()
        self.exposures = ExposureLog(directory, self.writer)

    def _recover_unheld(self) -> None:
        """Recovers this process's slot and every slot no live process holds: a server restarted with
        fewer workers must still count what a crashed worker of another slot fsynced."""
        self._recover(self.writer)
        for lock in sorted((self.directory / ".writers").glob("w*.lock")):
            writer = lock.stem
            if writer == self.writer:
                continue
            fd = os.open(lock, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process writes there, and recovered it when it started
            else:
                self._recover(writer)
            finally:
                os.close(fd)

    def _take_slot(self) -> tuple[int, str]:
        """The first writer slot no live process holds: its files are this process's alone."""
        locks = self.directory / ".writers"
        locks.mkdir(exist_ok=True)
        for n in range(MAX_WRITER_SLOTS):
            fd = os.open(locks / f"w{n}.lock", os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd, f"w{n}"
            except BlockingIOError:
                os.close(fd)
        raise RuntimeError(f"{MAX_WRITER_SLOTS} processes already write events to {self.directory}")

    def _recover(self, writer: str) -> None:
        """Makes SQLite agree with a slot's files after a crash (see the module's docstring)."""
        known = dict(self._db.execute("SELECT path, offset FROM event_files").fetchall())
        for path in event_format.partitions(self.directory, writer):
            offset = int(known.get(str(path), 0))
            with path.open("r+b") as file:
                file.seek(offset)
                tail = file.read()
                complete = tail[: tail.rfind(b"\n") + 1]
                if len(complete) < len(tail):
                    log.warning(
                        "%s: cutting %d bytes of a line left half written", path, len(tail) - len(complete)
                    )
                    file.truncate(offset + len(complete))
                    os.fsync(file.fileno())
            events = [
                event_format.parse(line) for line in complete.decode("utf-8", "replace").splitlines() if line
            ]
            found = [e for e in events if e is not None]
            if found:
                log.info("%s: %d events written before a crash counted as recorded", path, len(found))
            self._db.execute("BEGIN IMMEDIATE")
            self._index(found, time.time())
            self._db.execute(
                "INSERT OR REPLACE INTO event_files VALUES (?, ?)", (str(path), offset + len(complete))
            )
            self._db.execute("COMMIT")
        for path in event_format.partitions(self.directory, writer, EXPOSURES):
            cut_partial_line(path)

    def record(self, events: list[Event]) -> tuple[int, int]:
        """Writes the events not recorded before; (written, duplicates). Returns once they are on disk."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # one writer at a time across the host's processes
            try:
                fresh = self._fresh(events)
                offsets = self._append(fresh)
                self._index(fresh, time.time())
                self._db.executemany("INSERT OR REPLACE INTO event_files VALUES (?, ?)", offsets.items())
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._batches += 1
            if self._batches % PRUNE_EVERY == 0:
                self.prune(time.time())
        return len(fresh), len(events) - len(fresh)

    def _fresh(self, events: list[Event]) -> list[Event]:
        """The events whose id is neither recorded before nor earlier in the batch."""
        ids = list(dict.fromkeys(e.event_id for e in events))
        seen: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            seen.update(
                r[0]
                for r in self._db.execute(
                    f"SELECT event_id FROM event_ids WHERE event_id IN ({marks})", chunk
                )
            )
        fresh = []
        for event in events:
            if event.event_id not in seen:
                seen.add(event.event_id)
                fresh.append(event)
        return fresh

    def _append(self, events: list[Event]) -> dict[str, int]:
        """Appends and fsyncs; the new end offset of every file written."""
        by_day: dict[str, list[str]] = {}
        for event in events:
            by_day.setdefault(event.day(), []).append(event.line())
        offsets = {}
        for day, lines in by_day.items():
            path = event_format.partition(self.directory, day, self.writer)
            path.parent.mkdir(exist_ok=True)
            with path.open("ab") as file:
                start = file.tell()
                try:
                    file.write("".join(lines).encode("utf-8"))
                    file.flush()
                    os.fsync(file.fileno())
                except BaseException:  # e.g. a full disk: nothing of a batch not acknowledged stays
                    file.truncate(start)
                    raise
                offsets[str(path)] = file.tell()
        return offsets

    def _index(self, events: list[Event], now: float) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO event_ids VALUES (?, ?)", ((e.event_id, now) for e in events)
        )
        self._db.executemany(
            "INSERT INTO recent VALUES (?, ?, ?)",
            ((e.user_id, e.timestamp, e.item_id) for e in events if e.event_type in SESSION_TYPES),
        )

    def prune(self, now: float) -> None:
        self._db.execute("DELETE FROM event_ids WHERE recorded_at < ?", (now - DEDUPE_DAYS * 86400,))
        self._db.execute("DELETE FROM recent WHERE timestamp < ?", (now - SESSION_SECONDS,))

    def session(self, user_id: str, now: float) -> tuple[str, ...]:
        """The items of the user's events of the last day, most recent first (any process's)."""
        reader = getattr(self._local, "reader", None)
        if reader is None:  # one read connection per thread: readers never wait for the writer (WAL)
            reader = self._local.reader = connect(self._database, durable=False)
        rows = reader.execute(
            "SELECT item_id FROM recent WHERE user_id = ? AND timestamp >= ? ORDER BY timestamp DESC LIMIT ?",
            (user_id, now - SESSION_SECONDS, 4 * SESSION_ITEMS),
        ).fetchall()
        return tuple(dict.fromkeys(r[0] for r in rows))[:SESSION_ITEMS]

    def close(self) -> None:
        self.exposures.close()
        with self._lock:
            self._db.close()
        os.close(self._slot_lock)


def cut_partial_line(path: Path) -> None:
    """Cuts what follows the file's last newline: half a line a crash (or a full disk) left."""
    with path.open("r+b") as file:
        end = file.seek(0, os.SEEK_END)
        position = end
        while position > 0:
            start = max(0, position - 65536)
            file.seek(start)
            newline = file.read(position - start).rfind(b"\n")
            if newline >= 0:
                position = start + newline + 1
                break
            position = start
        if position < end:
            log.warning("%s: cutting %d bytes of a line left half written", path, end - position)
            file.truncate(position)
            os.fsync(file.fileno())


class ExposureLog:
    """Appends exposures to one writer slot's daily files; a thread fsyncs them (module docstring).
    Thread-safe."""

    def __init__(self, directory: Path, writer: str) -> None:
        self.directory = directory
        self.writer = writer
        self._files: dict[str, int] = {}  # day -> descriptor
        self._unsynced: set[str] = set()  # days written since their last fsync
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_every, name="exposures-fsync", daemon=True)
        self._flusher.start()

    def write(self, exposure: Exposure) -> None:
        """In the file (not yet fsynced) when it returns; OSError when the disk refuses it."""
        data = exposure.line().encode("utf-8")
        day = exposure.day()
        with self._lock:
            fd = self._files.get(day)
            if fd is None:
                path = event_format.partition(self.directory, day, self.writer, EXPOSURES)
                path.parent.mkdir(exist_ok=True)
                fd = self._files[day] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            written = os.write(fd, data)
            if written < len(data):  # a full disk: never leave half a line behind
                os.ftruncate(fd, os.fstat(fd).st_size - written)
                raise OSError(f"exposure log of {day}: disk full ({written} of {len(data)} bytes written)")
            self._unsynced.add(day)

    def flush(self) -> None:
        """Fsyncs what was written; closes the files of days no longer written (all but the newest)."""
        with self._lock:
            days, self._unsynced = self._unsynced, set()
            descriptors = [self._files[day] for day in days]
        for fd in descriptors:  # outside the lock: Recommend never waits for the disk
            os.fsync(fd)
        with self._lock:
            for day in sorted(self._files)[:-1]:
                if day not in self._unsynced:
                    os.close(self._files.pop(day))

    def _flush_every(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except OSError:
                log.exception("exposure log: fsync failed; trying again in %.1f s", FLUSH_SECONDS)

    def close(self) -> None:
        self._stop.set()
        self._flusher.join()
        self.flush()
        with self._lock:
            for fd in self._files.values():
                os.close(fd)
            self._files.clear()
