"""The spool's SQLite database: its tables, and the statements of a group commit, a page read
and a watch scan.

Plain functions over one connection, run in worker threads by :class:`router.spool.Spool`,
which holds the locks; nothing here knows about Trio or the queues in memory.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from router.queue import Entry
from router.storage import PROBE_SCHEMA, open_sqlite

__all__ = [
    "Write",
    "chunks",
    "commit",
    "connect",
    "merge",
    "oldest_enqueued_at",
    "pending_counts",
    "queue_table",
    "read_page",
    "scan_foreign",
    "sink_ids",
]

#: One not-yet-written event of a sink: ``(event_id, payload, enqueued_at)``.
Row = tuple[str, bytes, float]
#: One chunk read back: ``(seq, events left in it, its entries)``.
Page = list[tuple[int, int, list[Entry]]]

_new_entry = tuple.__new__


@dataclass(slots=True)
class Write:
    """Work for one group commit, from one or more callers."""

    inserts: dict[int, list[Row]] = field(default_factory=dict)
    deletes: dict[int, list[Any]] = field(default_factory=dict)
    dead: list[tuple[Any, ...]] = field(default_factory=list)
    dedup: dict[int, float] = field(default_factory=dict)
    #: Per sink id: ``(seq, event_id, bytes)`` of events settled in a chunk still pending.
    settled: dict[int, list[tuple[int, str, int]]] = field(default_factory=dict)


_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS sinks (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    status INTEGER,
    response TEXT,
    enqueued_at REAL NOT NULL,
    dead_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_sink ON dead_letters (sink, id);
-- Events delivered or dead-lettered out of chunk rows that other events keep pending;
-- a row's entries go when the row does.
CREATE TABLE IF NOT EXISTS settled (
    sink INTEGER NOT NULL, seq INTEGER NOT NULL, event_id TEXT NOT NULL, size INTEGER NOT NULL,
    PRIMARY KEY (sink, seq, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dedup (
    sink INTEGER NOT NULL, event_id TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (sink, event_id)
) WITHOUT ROWID;
"""
    + PROBE_SCHEMA
)


#: Events and payload bytes of a set of chunk rows (payloads are joined by b"\n").
_COUNTS = "coalesce(sum(count), 0), coalesce(sum(length(payloads) - count + 1), 0)"


def merge(into: Write, write: Write) -> None:
    """Add ``write``'s work to ``into``."""
    for sink_id, rows in write.inserts.items():
        into.inserts.setdefault(sink_id, []).extend(rows)
    for sink_id, seqs in write.deletes.items():
        into.deletes.setdefault(sink_id, []).extend(seqs)
    into.dead.extend(write.dead)
    into.dedup.update(write.dedup)
    for sink_id, rows in write.settled.items():
        into.settled.setdefault(sink_id, []).extend(rows)


def queue_table(sink_id: int) -> str:
    """The name of a sink's queue table."""
    return f"q_{sink_id}"


def connect(path: Path | str, *, sync: str = "FULL") -> sqlite3.Connection:
    """A connection in WAL mode, usable from worker threads one at a time.

    :raises StorageUnusable: naming the file and the fix (not a database, a
        directory, read-only, no space…).
    """

    def setup(db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={sync}")
        db.execute("PRAGMA busy_timeout=30000")
        db.executescript(_SCHEMA)

    return open_sqlite(path, setup, what="spool")


def sink_ids(db: sqlite3.Connection, names: Iterable[str]) -> dict[str, int]:
    """The id of each sink name, creating the sink's queue table if new."""
    ids = {}
    for name in names:
        db.execute("INSERT OR IGNORE INTO sinks (name) VALUES (?)", (name,))
        (sink_id,) = db.execute("SELECT id FROM sinks WHERE name = ?", (name,)).fetchone()
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {queue_table(sink_id)} ("
            "seq INTEGER PRIMARY KEY AUTOINCREMENT, count INTEGER NOT NULL, "
            "event_ids BLOB NOT NULL, payloads BLOB NOT NULL, enqueued_at REAL NOT NULL)"
        )
        ids[name] = sink_id
    return ids


def _sequence(db: sqlite3.Connection, table: str) -> int:
    """The highest seq a table ever gave out (rows deleted since included)."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    return row[0] if row else 0


def pending_counts(db: sqlite3.Connection, sink_id: int) -> tuple[int, int, int]:
    """A sink's pending ``(events, payload bytes, highest seq)``, settled events left out."""
    table = queue_table(sink_id)
    count, size, max_seq = db.execute(
        f"SELECT {_COUNTS}, coalesce(max(seq), 0) FROM {table}"
    ).fetchone()
    done, done_size = db.execute(
        "SELECT count(*), coalesce(sum(size), 0) FROM settled WHERE sink = ?", (sink_id,)
    ).fetchone()
    return count - done, size - done_size, max(max_seq, _sequence(db, table))


def oldest_enqueued_at(db: sqlite3.Connection, sink_id: int) -> float | None:
    """The enqueue time of a sink's first pending chunk (its oldest event), or None."""
    row = db.execute(
        f"SELECT enqueued_at FROM {queue_table(sink_id)} ORDER BY seq LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def dead_letter_counts(db: sqlite3.Connection) -> dict[str, int]:
    """Sink name -> dead letters stored, for every sink the spool has known."""
    rows = db.execute(
        "SELECT s.name, count(d.id) FROM sinks s LEFT JOIN dead_letters d ON d.sink = s.id "
        "GROUP BY s.id ORDER BY s.name"
    ).fetchall()
    return dict(rows)


def chunks(rows: list[Row], max_events: int, max_bytes: int) -> Iterable[list[Row]]:
    """``rows`` cut into runs of at most ``max_events`` events and ``max_bytes``."""
    if sum(map(len, map(itemgetter(1), rows))) <= max_bytes:  # the usual case, small events
        for start in range(0, len(rows), max_events):
            yield rows[start : start + max_events]
        return
    start, size = 0, 0
    for i, row in enumerate(rows):
        n = len(row[1])
        if i > start and (i - start >= max_events or size + n > max_bytes):
            yield rows[start:i]
            start, size = i, 0
        size += n
    if start < len(rows):
        yield rows[start:]


def commit(
    db: sqlite3.Connection, write: Write, *, chunk_events: int, chunk_bytes: int
) -> tuple[dict[int, list[Entry]], dict[int, set[str]]]:
    """One transaction: the inserted entries and the ids ``dedup`` skipped, per sink id.

    Rolled back on any error; the caller holds the write lock.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        committed = {}
        skipped = {}
        for sink_id, rows in write.inserts.items():
            window = write.dedup.get(sink_id)
            if window is not None:
                kept = dedup(db, sink_id, rows, window)
                if len(kept) < len(rows):
                    kept_ids = {row[0] for row in kept}
                    skipped[sink_id] = {r[0] for r in rows if r[0] not in kept_ids}
                rows = kept
            committed[sink_id] = _insert(db, sink_id, rows, chunk_events, chunk_bytes)
        _settle(db, write)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
            db.execute("ROLLBACK")
        raise
    return committed, skipped


def _insert(
    db: sqlite3.Connection, sink_id: int, rows: list[Row], chunk_events: int, chunk_bytes: int
) -> list[Entry]:
    """Insert one sink's rows, one chunk row per ``chunk_events`` or ``chunk_bytes``.

    Chunks bound the bytes of a page read back, however large the commit.
    """
    entries: list[Entry] = []
    for chunk in chunks(rows, chunk_events, chunk_bytes):
        ids, payloads, _ = zip(*chunk, strict=True)
        joined = b"\n".join(payloads)
        # Payloads are orjson output, which never holds a raw newline.
        if joined.count(b"\n") != len(chunk) - 1:
            raise ValueError("a spooled payload must be JSON without raw newlines")
        cursor = db.execute(
            f"INSERT INTO {queue_table(sink_id)} (count, event_ids, payloads, "
            "enqueued_at) VALUES (?,?,?,?)",
            (len(chunk), orjson.dumps(ids), joined, chunk[0][2]),
        )
        seq = cursor.lastrowid
        # tuple.__new__ skips the namedtuple's Python-level constructor.
        entries += [_new_entry(Entry, (seq, *row)) for row in chunk]
    return entries


def _settle(db: sqlite3.Connection, write: Write) -> None:
    """Write the dead letters, the settled events and the deletes of finished chunks."""
    if write.dead:
        db.executemany(
            "INSERT INTO dead_letters (sink, event_id, payload, reason, attempts, "
            "status, response, enqueued_at, dead_at) VALUES (?,?,?,?,?,?,?,?,?)",
            write.dead,
        )
    for sink_id, rows in write.settled.items():
        db.executemany(
            "INSERT OR IGNORE INTO settled (sink, seq, event_id, size) VALUES (?,?,?,?)",
            [(sink_id, *row) for row in rows],
        )
    for sink_id, seqs in write.deletes.items():
        db.executemany(f"DELETE FROM {queue_table(sink_id)} WHERE seq = ?", [(s,) for s in seqs])
        db.executemany(
            "DELETE FROM settled WHERE sink = ? AND seq = ?", [(sink_id, s) for s in seqs]
        )


def dedup(db: sqlite3.Connection, sink_id: int, rows: list[Row], window: float) -> list[Row]:
    """The rows whose event id was not seen within ``window`` seconds; records them as seen."""
    now = time.time()
    kept = []
    for row in rows:
        cur = db.execute(
            "INSERT INTO dedup (sink, event_id, at) VALUES (?,?,?) ON CONFLICT DO UPDATE "
            "SET at = excluded.at WHERE dedup.at < ?",
            (sink_id, row[0], now, now - window),
        )
        if cur.rowcount:
            kept.append(row)
    return kept


#: Above any seq (SQLite's integers are 64-bit).
_LAST_SEQ = (1 << 63) - 1


def read_page(
    db: sqlite3.Connection,
    sink_id: int,
    after: Any,
    events: int,
    size: int,
    upto: int | None = None,
) -> Page:
    """The chunks after ``after`` (and up to ``upto``) holding about ``events`` events
    or ``size`` payload bytes, whichever comes first: ``(seq, count, entries)``.

    Whole chunks are read, at least one. Counts and sizes are read first,
    without the payloads (``length()`` of a blob does not read it), so
    memory stays bounded however large the chunks and however long the queue.
    """
    table = queue_table(sink_id)
    last, total, total_bytes = after, 0, 0
    for seq, count, length in db.execute(
        f"SELECT seq, count, length(payloads) FROM {table} WHERE seq > ? AND seq <= ? "
        "ORDER BY seq LIMIT 1000",
        (after, _LAST_SEQ if upto is None else upto),
    ):
        last, total, total_bytes = seq, total + count, total_bytes + length
        if total >= events or total_bytes >= size:
            break
    rows = db.execute(
        f"SELECT seq, count, event_ids, payloads, enqueued_at FROM {table} "
        "WHERE seq > ? AND seq <= ? ORDER BY seq",
        (after, last),
    ).fetchall()
    # Events settled before a restart, out of chunks still pending: not again.
    settled = set(
        db.execute(
            "SELECT seq, event_id FROM settled WHERE sink = ? AND seq > ? AND seq <= ?",
            (sink_id, after, last),
        ).fetchall()
    )
    pages = [
        (
            seq,
            count,
            [
                Entry(seq, event_id, payload, at)
                for event_id, payload in zip(orjson.loads(ids), payloads.split(b"\n"), strict=True)
            ],
        )
        for seq, count, ids, payloads, at in rows
    ]
    if settled:
        pages = [
            (seq, len(kept), kept)
            for seq, _, entries in pages
            if (kept := [e for e in entries if (seq, e.event_id) not in settled])
        ]
    return pages


def scan_foreign(
    db: sqlite3.Connection, sink_id: int, scanned: int, own: Iterable[int]
) -> tuple[int, int, int] | None:
    """Rows after ``scanned`` that are not ``own``: ``(max seq, events, bytes)``.

    None if the table gave out no seq after ``scanned``; ``(max seq, 0, 0)``
    if every new row is one of ``own``.
    """
    max_seq = _sequence(db, queue_table(sink_id))
    if max_seq <= scanned:
        return None
    mine = set(own)
    count = size = 0
    for seq, events, length in db.execute(
        f"SELECT seq, count, length(payloads) - count + 1 FROM {queue_table(sink_id)} "
        "WHERE seq > ? AND seq <= ?",
        (scanned, max_seq),
    ):
        if seq not in mine:
            count += events
            size += length
    return max_seq, count, size
