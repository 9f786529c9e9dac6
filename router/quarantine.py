"""Invalid events kept with their reasons (``on_invalid: quarantine``).

One SQLite file in the data directory, shared by every source. Sources read
it through their failed-events routes; ``router quarantine`` reads it from the
command line, whether or not the daemon runs (WAL mode lets both in).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import trio

from router.errors import StorageError
from router.storage import PROBE_SCHEMA, WriteHealth, open_sqlite, probe_write

__all__ = ["Quarantine", "QuarantinedEvent"]

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    event BLOB NOT NULL,
    errors TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_source ON quarantine (source, seq);
"""
    + PROBE_SCHEMA
)


@dataclass(frozen=True, slots=True)
class QuarantinedEvent:
    """One invalid event as it was received, with why it failed."""

    seq: int
    source: str
    received_at: int
    event: Any
    errors: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.seq,
            "source": self.source,
            "received_at": self.received_at,
            "event": self.event,
            "errors": self.errors,
        }


class Quarantine:
    """The quarantine store. ``path=None`` keeps it in memory (tests, ``translate``).

    Methods run SQLite in a worker thread; one connection, serialized by a lock.

    :raises StorageUnusable: the file cannot be used (not a database, read-only,
        no space…); the message names it and what to do.
    """

    def __init__(self, path: Path | str | None, *, probe: bool = False):
        self.path = str(path) if path is not None else ":memory:"
        self.health = WriteHealth(self.path, "quarantine")

        def setup(db: sqlite3.Connection) -> None:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
            db.execute("SELECT seq FROM quarantine LIMIT 1").fetchone()  # readable at all?
            if probe:
                probe_write(db)

        self._db = open_sqlite(self.path, setup, what="quarantine")
        self._lock = threading.Lock()
        #: Counts for the status (opened on first use), so a count of a large
        #: table never holds up a write.
        self._count_db: sqlite3.Connection | None = None
        self._count_lock = threading.Lock()

    def close(self) -> None:
        with self._count_lock:
            if self._count_db is not None:
                self._count_db.close()
            self._count_db = None
        self._db.close()

    async def add(
        self, source: str, received_at: int, events: Sequence[tuple[Any, Sequence[str]]]
    ) -> None:
        """Store ``(raw event, error messages)`` pairs durably."""
        rows = [
            (source, received_at, orjson.dumps(raw), orjson.dumps(list(errors)).decode())
            for raw, errors in events
        ]
        try:
            await trio.to_thread.run_sync(self._add, rows)
        except (sqlite3.Error, OSError) as exc:
            error = StorageError(self.health.failed(exc))
            error.reported = True
            raise error from exc
        self.health.ok()

    async def probe(self) -> None:
        """Try a write while writes fail, so readiness sees the disk come back."""
        try:
            await trio.to_thread.run_sync(self._probe)
        except (sqlite3.Error, OSError) as exc:
            self.health.failed(exc)
        else:
            self.health.ok()

    def _probe(self) -> None:
        with self._lock:
            probe_write(self._db)

    def _add(self, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO quarantine (source, received_at, event, errors) VALUES (?,?,?,?)",
                    rows,
                )
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    async def count(self) -> int:
        """How many events are stored, every source's."""
        return await trio.to_thread.run_sync(self._count)

    def _count(self) -> int:
        if self.path == ":memory:":  # one database per connection: count on the one
            with self._lock:
                return self._db.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        with self._count_lock:
            if self._count_db is None:
                self._count_db = sqlite3.connect(
                    self.path, check_same_thread=False, isolation_level=None, timeout=30
                )
            return self._count_db.execute("SELECT count(*) FROM quarantine").fetchone()[0]

    async def list(
        self, source: str | None = None, *, offset: int = 0, limit: int = 100
    ) -> tuple[int, list[QuarantinedEvent]]:
        """``(total, page)`` of one source's events (all sources if ``None``), oldest first."""
        return await trio.to_thread.run_sync(self.list_sync, source, offset, limit)

    def list_sync(
        self, source: str | None, offset: int = 0, limit: int = 100
    ) -> tuple[int, list[QuarantinedEvent]]:
        where, args = ("WHERE source = ?", (source,)) if source is not None else ("", ())
        with self._lock:
            total = self._db.execute(f"SELECT count(*) FROM quarantine {where}", args).fetchone()[0]
            rows = self._db.execute(
                f"SELECT seq, source, received_at, event, errors FROM quarantine {where} "
                "ORDER BY seq LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
        return total, [
            QuarantinedEvent(seq, src, at, orjson.loads(event), orjson.loads(errors))
            for seq, src, at, event, errors in rows
        ]

    def purge_sync(self, source: str | None) -> int:
        """Delete a source's events (all if ``None``); returns how many."""
        where, args = ("WHERE source = ?", (source,)) if source is not None else ("", ())
        with self._lock:
            return self._db.execute(f"DELETE FROM quarantine {where}", args).rowcount

    def get_sync(self, seqs: Sequence[int]) -> list[QuarantinedEvent]:
        """The events with these ids (those that exist), oldest first."""
        if not seqs:
            return []
        marks = ",".join("?" * len(seqs))
        with self._lock:
            rows = self._db.execute(
                f"SELECT seq, source, received_at, event, errors FROM quarantine "
                f"WHERE seq IN ({marks}) ORDER BY seq",
                tuple(seqs),
            ).fetchall()
        return [
            QuarantinedEvent(seq, src, at, orjson.loads(event), orjson.loads(errors))
            for seq, src, at, event, errors in rows
        ]

    def update_sync(self, seq: int, event: Any, errors: Sequence[str]) -> None:
        """Keep ``event`` (as fixed, or unchanged) with its current ``errors`` under ``seq``."""
        with self._lock:
            self._db.execute(
                "UPDATE quarantine SET event = ?, errors = ? WHERE seq = ?",
                (orjson.dumps(event), orjson.dumps(list(errors)).decode(), seq),
            )

    def delete_sync(self, seqs: Sequence[int]) -> int:
        """Delete the events with these ids (replayed); returns how many."""
        if not seqs:
            return 0
        marks = ",".join("?" * len(seqs))
        with self._lock:
            return self._db.execute(
                f"DELETE FROM quarantine WHERE seq IN ({marks})", tuple(seqs)
            ).rowcount
