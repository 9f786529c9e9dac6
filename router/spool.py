"""The durable spool: every sink's queue and dead letters in one SQLite database.

Why hand-written: no maintained library offers a durable, Trio-native queue
with group commit; SQLite (stdlib, WAL mode) does the hard part, and this
module adds the batching and the in-memory window around it.

- **Group commit.** Ingest requests submit their entries and wait; one writer
  task commits everything submitted meanwhile in one transaction (inserts,
  acknowledgements and dead letters together) in a worker thread, then wakes
  every waiter. A client is acknowledged only after its events are committed.
- **Bounded memory.** Each sink keeps at most ``HOT_EVENTS`` events and
  ``memory_bytes`` (``spool.memory_bytes``) of its pending events in memory;
  beyond that the queue is *spilled* and its runner pages events in from the
  database in ``seq`` order, one page of at most ``PAGE_EVENTS`` events and
  ``memory_bytes`` at a time, and only once the previous page is handed out.
  Rows hold at most ``CHUNK_EVENTS`` events and ``CHUNK_BYTES``, so a page
  overshoots its budget by less than one chunk (or one event larger than
  ``CHUNK_BYTES``). Memory stays flat however long a sink is down and however
  large its events.
- **Monotonic seqs.** Each sink has its own table with an AUTOINCREMENT key,
  so ``seq`` never goes back, even when the table empties or ``router dlq
  replay`` inserts rows from another process (found by :meth:`Spool.watch`).
- ``buffer: memory`` sinks use the same queues without writing events to the
  database at ingest; at shutdown their leftovers are written so nothing the
  router acknowledged is lost across a clean restart.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
import structlog
import trio

from router.config.settings import SpoolConfig
from router.errors import StorageError, StorageUnusable
from router.queue import DeadLetter, Entry, QueueBounds
from router.storage import (
    PROBE_SCHEMA,
    WriteHealth,
    describe,
    make_data_dir,
    open_sqlite,
    probe_write,
)

__all__ = ["DeadLetter", "Entry", "Spool", "SqliteQueue", "StorageError"]

log = structlog.get_logger()

#: Most events / bytes a sink keeps in memory before spilling to the database
#: (the bytes are the default of ``spool.memory_bytes``).
HOT_EVENTS = 20_000
HOT_BYTES = SpoolConfig().memory_bytes
#: Most events / payload bytes in one chunk (row) of the queue table; an event
#: larger than ``CHUNK_BYTES`` is a chunk of its own.
CHUNK_EVENTS = 1_000
CHUNK_BYTES = 1 << 20
#: Events read per page when a spilled queue catches up; a page also stops at
#: the queue's ``memory_bytes`` (whole chunks: the chunk that crosses either
#: budget is read too, so a page has at least one).
PAGE_EVENTS = 5_000
#: How often the spool looks for rows other processes inserted (dlq replay).
WATCH_INTERVAL = 1.0
#: While writes fail, how often the writer tries again (a probe write if idle).
PROBE_INTERVAL = 1.0
#: Longest a delivered event of a chunk still pending waits to be recorded as
#: settled (it rides along with the next commit if one comes sooner).
SETTLED_FLUSH = 0.05


_new_entry = tuple.__new__


@dataclass(slots=True)
class _Write:
    """Work for one group commit, from one or more callers."""

    inserts: dict[int, list[tuple[str, bytes, float]]] = field(default_factory=dict)
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


def _merge(into: _Write, write: _Write) -> None:
    for sink_id, rows in write.inserts.items():
        into.inserts.setdefault(sink_id, []).extend(rows)
    for sink_id, seqs in write.deletes.items():
        into.deletes.setdefault(sink_id, []).extend(seqs)
    into.dead.extend(write.dead)
    into.dedup.update(write.dedup)
    for sink_id, rows in write.settled.items():
        into.settled.setdefault(sink_id, []).extend(rows)


def _queue_table(sink_id: int) -> str:
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
            f"CREATE TABLE IF NOT EXISTS {_queue_table(sink_id)} ("
            "seq INTEGER PRIMARY KEY AUTOINCREMENT, count INTEGER NOT NULL, "
            "event_ids BLOB NOT NULL, payloads BLOB NOT NULL, enqueued_at REAL NOT NULL)"
        )
        ids[name] = sink_id
    return ids


class Spool:
    """The SQLite spool of one daemon (one worker process). Owns one writer task."""

    def __init__(self, path: Path | str, *, sync: str = "FULL"):
        self.path = Path(path)
        self.sync = sync
        self.queues: dict[str, SqliteQueue] = {}
        #: The same queues by sink id, which commits and the watcher report by.
        self._by_id: dict[int, SqliteQueue] = {}
        self._pending = _Write()
        self._waiters: list[trio.Event] = []
        #: Acks and dead letters of delivered batches: kept for the next commit
        #: when one fails, their callers waiting (see :meth:`submit`).
        self._kept = _Write()
        self._kept_waiters: list[trio.Event] = []
        #: Whether the database can be written now (``/readyz``).
        self.health = WriteHealth(self.path, "spool")
        self._failures: dict[int, BaseException] = {}
        self._skipped: dict[int, dict[int, set[str]]] = {}
        self._work = trio.Event()
        self._batch_no = 0
        self._closed = False
        self._wlock = threading.Lock()
        self._rlock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._rdb: sqlite3.Connection | None = None
        #: Per sink id: the highest seq the watcher has accounted for, and the
        #: seqs of this spool's own rows committed since (both under ``_wlock``).
        self._scanned: dict[int, int] = {}
        self._own_rows: dict[int, list[int]] = {}

    # -- lifecycle --------------------------------------------------------------

    async def open(self, sinks: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Open the database and load each sink's pending counts (not its rows).

        :param sinks: ``(name, {"durable": bool, "max_events": …, "max_bytes": …,
            "dedup_window": …})`` per sink.
        """

        def open_db() -> None:
            make_data_dir(self.path.parent)
            self._db = connect(self.path, sync=self.sync)
            self._rdb = connect(self.path, sync=self.sync)
            try:
                # Refuse to start on a disk that cannot take a write rather than 503 every request.
                probe_write(self._db)
            except (sqlite3.Error, OSError) as exc:
                self.close_db()
                raise StorageUnusable(self.path, describe(self.path, exc, what="spool")) from exc

        await trio.to_thread.run_sync(open_db)
        await self.add(sinks)

    async def add(self, sinks: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Open the queues of ``sinks`` not open yet (at start, or a reload adding a sink).

        A sink that had a queue before keeps it, pending events included.
        """
        sinks = [(name, options) for name, options in sinks if name not in self.queues]

        def load(db: sqlite3.Connection) -> dict[str, tuple[int, int, int, int]]:
            try:
                ids = sink_ids(db, [name for name, _ in sinks])
                stats = {}
                for name, sink_id in ids.items():
                    table = _queue_table(sink_id)
                    count, size, max_seq = db.execute(
                        f"SELECT {_COUNTS}, coalesce(max(seq), 0) FROM {table}"
                    ).fetchone()
                    done, done_size = db.execute(
                        "SELECT count(*), coalesce(sum(size), 0) FROM settled WHERE sink = ?",
                        (sink_id,),
                    ).fetchone()
                    count, size = count - done, size - done_size
                    stats[name] = (sink_id, count, size, max(max_seq, self._sequence(table)))
            except (sqlite3.Error, OSError) as exc:
                raise StorageUnusable(self.path, describe(self.path, exc, what="spool")) from exc
            return stats

        if not sinks:
            return
        stats = await trio.to_thread.run_sync(self._locked, load)
        for name, options in sinks:
            sink_id, count, size, max_seq = stats[name]
            with self._wlock:
                self._scanned[sink_id] = max_seq
            queue = SqliteQueue(self, name, sink_id, count, size, max_seq, **options)
            self.queues[name] = self._by_id[sink_id] = queue

    def _sequence(self, table: str) -> int:
        row = self._db.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
        ).fetchone()
        return row[0] if row else 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer loop, plus the watcher; runs until :meth:`close` is awaited."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_loop)
            task_status.started()
            while True:
                if self.health.error is not None and not self._closed:
                    with trio.move_on_after(PROBE_INTERVAL) as probe:
                        await self._work.wait()
                    if probe.cancelled_caught:
                        await self._probe()
                        continue
                elif not self._pending_empty():
                    # Only deferred work (settled events): commit it soon, or with
                    # whatever is submitted meanwhile.
                    with trio.move_on_after(SETTLED_FLUSH):
                        await self._work.wait()
                else:
                    await self._work.wait()
                self._work = trio.Event()
                if self._pending_empty():
                    if self._closed:
                        break
                    continue
                await self._commit_pending()
            nursery.cancel_scope.cancel()

    async def _probe(self) -> None:
        """While writes fail: retry the kept acks alone, or write a probe row."""
        if not self._pending_empty():
            await self._commit_pending()
            return
        try:
            await trio.to_thread.run_sync(self._locked, probe_write)
        except (sqlite3.Error, OSError) as exc:
            self.health.failed(exc)
        else:
            self.health.ok()

    def _locked(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._wlock:
            return fn(self._db)

    async def close(self) -> None:
        """Flush non-durable queues to disk, commit what is pending, stop the writer."""
        for queue in self.queues.values():
            if not queue.durable:
                leftovers = queue.drain_memory()
                if leftovers:
                    self._pending.inserts.setdefault(queue.sink_id, []).extend(
                        (e.event_id, e.payload, e.enqueued_at) for e in leftovers
                    )
                    log.info("spool.memory_flushed", sink=queue.name, events=len(leftovers))
        self._closed = True
        self._work.set()
        if not self._pending_empty():
            flushed = sum(len(rows) for rows in self._pending.inserts.values())
            await self._commit_pending()
            if self._failures:
                # Nothing left to retry with: say what the failed last commit costs.
                log.error(
                    "spool.close_failed",
                    path=str(self.path),
                    error=self.health.error or str(next(iter(self._failures.values()))),
                    memory_events_lost=flushed,
                    acks_unwritten=sum(len(s) for s in self._kept.deletes.values()),
                    message="unwritten acks mean those events are delivered again on the "
                    "next start",
                )

    def close_db(self) -> None:
        for db in (self._db, self._rdb):
            if db is not None:
                db.close()

    # -- group commit -----------------------------------------------------------

    def _pending_empty(self) -> bool:
        p, k = self._pending, self._kept
        return not (
            p.inserts or p.deletes or p.dead or p.settled or k.deletes or k.dead or k.settled
        )

    async def submit(self, write: _Write, *, keep: bool = False) -> dict[int, set[str]]:
        """Queue a write for the next group commit and wait until it is durable.

        Returns the event ids de-duplication skipped in that commit, per sink id.

        :param keep: for the acks and dead letters of delivered batches: if the
            commit fails (disk full), the write is kept for the next one and
            this call waits for it instead of raising, so a full disk neither
            stops delivery with an error nor loses what was delivered.
        :raises StorageError: the commit failed (``keep=False``).
        """
        if self._closed:
            raise StorageError("the spool is closed")
        p = self._kept if keep else self._pending
        _merge(p, write)
        done = trio.Event()
        (self._kept_waiters if keep else self._waiters).append(done)
        batch_no = self._batch_no
        self._work.set()
        await done.wait()
        if keep:
            return {}
        failure = self._failures.get(batch_no)
        if isinstance(failure, StorageError):
            error = StorageError(str(failure))
            error.reported = failure.reported
            raise error from failure
        if failure is not None:
            raise StorageError(f"could not write the spool {self.path}: {failure}") from failure
        return self._skipped.get(batch_no, {})

    def defer(self, write: _Write) -> None:
        """Add a write to the next group commit without waiting for it.

        For what only saves work after a crash (settled events of a chunk
        still pending): at most ``SETTLED_FLUSH`` later, or with the next
        commit. Lost in a crash, it costs duplicates, never an event.
        """
        if not self._closed:
            # With the acks and dead letters, kept for the next commit if one fails.
            _merge(self._kept, write)

    async def _commit_pending(self) -> None:
        write, self._pending = self._pending, _Write()
        waiters, self._waiters = self._waiters, []
        kept, self._kept = self._kept, _Write()
        kept_waiters, self._kept_waiters = self._kept_waiters, []
        batch_no = self._batch_no
        self._batch_no += 1
        combined = _Write(
            dict(write.inserts),
            dict(write.deletes),
            list(write.dead),
            write.dedup,
            dict(write.settled),
        )
        _merge(combined, kept)
        try:
            committed, skipped = await trio.to_thread.run_sync(self._commit, combined)
        except Exception as exc:  # sqlite3.Error, OSError: reported to every waiter
            if isinstance(exc, sqlite3.Error | OSError):
                exc = StorageError(self.health.failed(exc))
                exc.reported = True
            else:
                log.error("spool.commit_failed", error=str(exc), error_type=type(exc).__name__)
            self._failures = {batch_no: exc}
            self._skipped = {}
            # Kept writes go first into the next commit; their callers go on waiting.
            _merge(kept, self._kept)
            self._kept = kept
            self._kept_waiters = kept_waiters + self._kept_waiters
            kept_waiters = []
        else:
            self.health.ok()
            self._failures = {}
            self._skipped = {batch_no: skipped} if skipped else {}
            for sink_id, entries in committed.items():
                self._by_id[sink_id].on_committed(entries)
        for waiter in (*waiters, *kept_waiters):
            waiter.set()

    def _commit(self, write: _Write) -> tuple[dict[int, list[Entry]], dict[int, set[str]]]:
        """One transaction (worker thread): the inserted entries and skipped ids per sink."""
        with self._wlock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                committed = {}
                skipped = {}
                for sink_id, rows in write.inserts.items():
                    window = write.dedup.get(sink_id)
                    if window is not None:
                        kept = self._dedup(db, sink_id, rows, window)
                        if len(kept) < len(rows):
                            kept_ids = {row[0] for row in kept}
                            skipped[sink_id] = {r[0] for r in rows if r[0] not in kept_ids}
                        rows = kept
                    if not rows:
                        committed[sink_id] = []
                        continue
                    # One row (a chunk) per CHUNK_EVENTS or CHUNK_BYTES of this sink's
                    # events in this commit, so that paging in is bounded in bytes.
                    entries = committed[sink_id] = []
                    for chunk in _chunks(rows):
                        ids, payloads, _ = zip(*chunk, strict=True)
                        joined = b"\n".join(payloads)
                        # Payloads are orjson output, which never holds a raw newline.
                        if joined.count(b"\n") != len(chunk) - 1:
                            raise ValueError("a spooled payload must be JSON without raw newlines")
                        cursor = db.execute(
                            f"INSERT INTO {_queue_table(sink_id)} (count, event_ids, payloads, "
                            "enqueued_at) VALUES (?,?,?,?)",
                            (len(chunk), orjson.dumps(ids), joined, chunk[0][2]),
                        )
                        seq = cursor.lastrowid
                        # tuple.__new__ skips the namedtuple's Python-level constructor.
                        entries += [_new_entry(Entry, (seq, *row)) for row in chunk]
                if write.dead:
                    db.executemany(
                        "INSERT INTO dead_letters (sink, event_id, payload, reason, attempts, "
                        "status, response, enqueued_at, dead_at) VALUES (?,?,?,?,?,?,?,?,?)",
                        write.dead,
                    )
                for sink_id, rows in write.settled.items():
                    db.executemany(
                        "INSERT OR IGNORE INTO settled (sink, seq, event_id, size) "
                        "VALUES (?,?,?,?)",
                        [(sink_id, *row) for row in rows],
                    )
                for sink_id, seqs in write.deletes.items():
                    db.executemany(
                        f"DELETE FROM {_queue_table(sink_id)} WHERE seq = ?", [(s,) for s in seqs]
                    )
                    db.executemany(
                        "DELETE FROM settled WHERE sink = ? AND seq = ?",
                        [(sink_id, s) for s in seqs],
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                    db.execute("ROLLBACK")
                raise
            # Recorded under the write lock, before the queues hear of the commit:
            # the watcher must not take these rows for another process's.
            for sink_id, entries in committed.items():
                if entries:
                    self._own_rows.setdefault(sink_id, []).extend({e.seq: None for e in entries})
            return committed, skipped

    @staticmethod
    def _dedup(
        db: sqlite3.Connection, sink_id: int, rows: list[tuple[str, bytes, float]], window: float
    ) -> list[tuple[str, bytes, float]]:
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

    # -- reading ---------------------------------------------------------------

    async def read_page(
        self, sink_id: int, after: Any, events: int, size: int
    ) -> list[tuple[int, int, list[Entry]]]:
        """The chunks after ``after`` holding about ``events`` events or ``size`` payload
        bytes, whichever comes first: ``(seq, count, entries)``.

        Whole chunks are read, at least one. Counts and sizes are read first,
        without the payloads (``length()`` of a blob does not read it), so
        memory stays bounded however large the chunks and however long the queue.
        """
        table = _queue_table(sink_id)

        def read() -> list[tuple[int, int, list[Entry]]]:
            with self._rlock:
                last, total, total_bytes = after, 0, 0
                for seq, count, length in self._rdb.execute(
                    f"SELECT seq, count, length(payloads) FROM {table} "
                    "WHERE seq > ? ORDER BY seq LIMIT 1000",
                    (after,),
                ):
                    last, total, total_bytes = seq, total + count, total_bytes + length
                    if total >= events or total_bytes >= size:
                        break
                rows = self._rdb.execute(
                    f"SELECT seq, count, event_ids, payloads, enqueued_at FROM {table} "
                    "WHERE seq > ? AND seq <= ? ORDER BY seq",
                    (after, last),
                ).fetchall()
                # Events settled before a restart, out of chunks still pending: not again.
                settled = set(
                    self._rdb.execute(
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
                        for event_id, payload in zip(
                            orjson.loads(ids), payloads.split(b"\n"), strict=True
                        )
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

        try:
            return await trio.to_thread.run_sync(read)
        except sqlite3.Error as exc:
            raise StorageError(f"could not read the spool: {exc}") from exc

    async def _watch_loop(self) -> None:
        """Notice rows inserted by other processes (``router dlq replay``)."""
        while True:
            await trio.sleep(WATCH_INTERVAL)
            try:
                found = await trio.to_thread.run_sync(self._scan_foreign)
            except sqlite3.Error as exc:
                log.warning("spool.watch_failed", error=str(exc))
                continue
            for sink_id, (max_seq, count, size) in found.items():
                self._by_id[sink_id].on_foreign_rows(max_seq, count, size)

    def _scan_foreign(self) -> dict[int, tuple[int, int, int]]:
        """Rows other processes inserted since the last scan: ``(max seq, events, bytes)``.

        Runs under the write lock, so no commit of this spool is between its
        transaction and the record of its rows in ``_own_rows``: the rows of
        this spool, committed but not yet handed to their queue, are never
        counted as replays.
        """
        found = {}
        with self._rlock, self._wlock:
            for queue in list(self.queues.values()):
                sink_id = queue.sink_id
                table = _queue_table(sink_id)
                row = self._rdb.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
                ).fetchone()
                scanned = self._scanned.get(sink_id, 0)
                own = self._own_rows.get(sink_id, ())
                if not row or row[0] <= scanned:
                    self._own_rows.pop(sink_id, None)
                    continue
                max_seq = row[0]
                mine = set(own)
                count = size = 0
                for seq, events, length in self._rdb.execute(
                    f"SELECT seq, count, length(payloads) - count + 1 FROM {table} "
                    "WHERE seq > ? AND seq <= ?",
                    (scanned, max_seq),
                ):
                    if seq not in mine:
                        count += events
                        size += length
                self._scanned[sink_id] = max_seq
                self._own_rows.pop(sink_id, None)
                if count:
                    found[sink_id] = (max_seq, count, size)
        return found


def _chunks(rows: list[tuple[str, bytes, float]]) -> Iterable[list[tuple[str, bytes, float]]]:
    """``rows`` cut into runs of at most ``CHUNK_EVENTS`` events and ``CHUNK_BYTES``."""
    if sum(map(len, map(itemgetter(1), rows))) <= CHUNK_BYTES:  # the usual case, small events
        for start in range(0, len(rows), CHUNK_EVENTS):
            yield rows[start : start + CHUNK_EVENTS]
        return
    start, size = 0, 0
    for i, row in enumerate(rows):
        n = len(row[1])
        if i > start and (i - start >= CHUNK_EVENTS or size + n > CHUNK_BYTES):
            yield rows[start:i]
            start, size = i, 0
        size += n
    if start < len(rows):
        yield rows[start:]


class SqliteQueue(QueueBounds):
    """One sink's queue in a :class:`Spool`, a :class:`~router.queue.SinkQueue`.

    ``pending`` counts every event not yet delivered or dead-lettered,
    including those in flight; it is what ``max_events``/``max_bytes`` bound.
    """

    def __init__(
        self,
        spool: Spool,
        name: str,
        sink_id: int,
        count: int,
        size: int,
        max_seq: int,
        *,
        durable: bool = True,
        max_events: int = SpoolConfig().max_events,
        max_bytes: int = SpoolConfig().max_bytes,
        memory_bytes: int = HOT_BYTES,
        dedup_window: float | None = None,
    ):
        self.spool = spool
        self.name = name
        self.sink_id = sink_id
        self.durable = durable
        self.max_events = max_events
        self.max_bytes = max_bytes
        #: Most payload bytes of a durable queue in memory: the hot window, or one page.
        self.memory_bytes = memory_bytes
        self.dedup_window = dedup_window
        self.pending_events = count
        self.pending_bytes = size
        self.recovered = count
        #: Called with the number of events another process added (``dlq replay``).
        self.on_replayed: Callable[[int], None] | None = None
        self.in_flight = 0
        self.committed_upto = max_seq
        self.loaded_upto = 0
        self.spilled = count > 0
        self._hot: deque[Entry] = deque()
        self._hot_bytes = 0
        self._memory_seq = 0
        #: Events of each chunk in memory or in flight not yet delivered or
        #: dead-lettered; the chunk's row is deleted when it reaches zero.
        self._chunk_left: dict[int, int] = {}
        self._changed = trio.Event()
        self._take_lock = trio.Lock()
        self.closed = False

    # -- state -----------------------------------------------------------------

    def statistics(self) -> dict[str, Any]:
        """The keys of :data:`router.queue.STATISTICS`, and ``in_memory_bytes``."""
        return {
            "pending_events": self.pending_events,
            "pending_bytes": self.pending_bytes,
            "in_flight": self.in_flight,
            "in_memory": len(self._hot),
            "in_memory_bytes": self._hot_bytes,
            "spilled": self.spilled,
        }

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def close(self) -> None:
        """No more batches after the in-memory ones (shutdown)."""
        self.closed = True
        self._wake()

    # -- writing -----------------------------------------------------------------

    async def put(self, entries: Sequence[tuple[str, bytes]], now: float) -> int:
        """Store events durably (or in memory for ``buffer: memory``).

        Returns how many were stored: fewer if de-duplication skipped some.
        """
        if self.durable:
            rows = [(event_id, payload, now) for event_id, payload in entries]
            write = _Write(inserts={self.sink_id: rows})
            if self.dedup_window is not None:
                write.dedup[self.sink_id] = self.dedup_window
            skipped = (await self.spool.submit(write)).get(self.sink_id)
            if not skipped:
                return len(entries)
            return sum(1 for event_id, _ in entries if event_id not in skipped)
        committed = []
        for event_id, payload in entries:
            # Memory-only entries get negative seqs: positive ones are database rows.
            self._memory_seq -= 1
            committed.append(Entry(self._memory_seq, event_id, payload, now))
        self.on_committed(committed)
        return len(committed)

    def on_committed(self, entries: list[Entry]) -> None:
        """New entries are stored: count them and hand them to the runner if it keeps up."""
        if not entries:
            return
        size = sum(len(e.payload) for e in entries)
        self.pending_events += len(entries)
        self.pending_bytes += size
        if not self.durable:
            # Memory buffers never spill: ingest bounds them with full().
            self._hot.extend(entries)
            self._hot_bytes += size
        else:
            # All the entries of one commit are one chunk (one row, one seq).
            contiguous = entries[0].seq == self.committed_upto + 1
            # max(): the watcher may have reported later rows of another process first.
            self.committed_upto = max(self.committed_upto, entries[-1].seq)
            if (
                not self.spilled
                and contiguous
                and len(self._hot) + len(entries) <= HOT_EVENTS
                and self._hot_bytes + size <= self.memory_bytes
            ):
                self._hot.extend(entries)
                self._hot_bytes += size
                left = self._chunk_left
                for entry in entries:  # one commit may span several chunks
                    left[entry.seq] = left.get(entry.seq, 0) + 1
                self.loaded_upto = self.committed_upto
            else:
                self.spilled = True
        self._wake()

    def on_foreign_rows(self, max_seq: int, count: int, size: int) -> None:
        """Another process added ``count`` events in rows up to ``max_seq`` (dlq replay)."""
        self.committed_upto = max(self.committed_upto, max_seq)
        self.pending_events += count
        self.pending_bytes += size
        self.spilled = True
        if self.on_replayed is not None:
            self.on_replayed(count)
        self._wake()

    def drain_memory(self) -> list[Entry]:
        """Memory-only entries not yet taken, removed from the queue (shutdown)."""
        out = [e for e in self._hot if e.seq < 0]
        self._hot = deque(e for e in self._hot if e.seq > 0)
        self._hot_bytes = sum(len(e.payload) for e in self._hot)
        return out

    # -- reading -----------------------------------------------------------------

    async def _load_page(self) -> None:
        # Called only when the hot window is empty, so memory holds one page at most.
        chunks = await self.spool.read_page(
            self.sink_id, self.loaded_upto, PAGE_EVENTS, self.memory_bytes
        )
        for seq, count, entries in chunks:
            self._hot.extend(entries)
            self._hot_bytes += sum(len(e.payload) for e in entries)
            self._chunk_left[seq] = count
        if chunks:
            self.loaded_upto = chunks[-1][0]
        if self.loaded_upto >= self.committed_upto:
            self.spilled = False
        elif not chunks:
            # Counted rows that are not there (deleted by `dlq purge` or a race): resync.
            self.loaded_upto = self.committed_upto
            self.spilled = False

    async def get_batch(self, max_events: int, max_bytes: int, max_wait: float) -> list[Entry]:
        """The next batch: waits for a first event, then up to ``max_wait`` to fill it.

        Once the queue is closed (shutdown) it hands out what is still in
        memory, pages nothing more in from disk, and then returns ``[]``.
        """
        async with self._take_lock:
            while not self._hot:
                if self.spilled and not self.closed:
                    await self._load_page()
                    continue
                if self.closed:
                    return []
                await self._changed.wait()
            batch: list[Entry] = []
            size = 0
            deadline = trio.current_time() + max_wait
            while len(batch) < max_events:
                if not self._hot:
                    if self.spilled and not self.closed:
                        await self._load_page()
                        continue
                    if self.closed or trio.current_time() >= deadline:
                        break
                    with trio.move_on_at(deadline):
                        await self._changed.wait()
                    continue
                entry = self._hot[0]
                if batch and size + len(entry.payload) > max_bytes:
                    break
                self._hot.popleft()
                self._hot_bytes -= len(entry.payload)
                batch.append(entry)
                size += len(entry.payload)
            self.in_flight += len(batch)
            return batch

    # -- finishing ----------------------------------------------------------------

    def _settle(self, entries: Sequence[Entry]) -> list[int]:
        """Count entries as done; return the chunks (row seqs) now done as a whole."""
        self.in_flight -= len(entries)
        self.pending_events -= len(entries)
        self.pending_bytes -= sum(len(e.payload) for e in entries)
        finished = []
        left = self._chunk_left
        for entry in entries:
            seq = entry.seq
            if seq > 0:
                left[seq] -= 1
                if not left[seq]:
                    del left[seq]
                    finished.append(seq)
        return finished

    def _settled_rows(
        self, entries: Sequence[Entry], finished: list[int]
    ) -> dict[int, list[tuple[int, str, int]]]:
        """The settled-event rows of entries whose chunk row stays (others are pending)."""
        done = set(finished)
        rows = [
            (e.seq, e.event_id, len(e.payload)) for e in entries if e.seq > 0 and e.seq not in done
        ]
        return {self.sink_id: rows} if rows else {}

    async def ack(self, entries: Sequence[Entry]) -> None:
        """The entries were delivered: delete each chunk whose events are all done.

        The others are recorded as settled with the next commit, so a restart
        does not send them again; the deletes are waited for.
        """
        finished = self._settle(entries)
        settled = self._settled_rows(entries, finished)
        if settled:
            self.spool.defer(_Write(settled=settled))
        if finished:
            await self.spool.submit(_Write(deletes={self.sink_id: finished}), keep=True)

    async def dead_letter(
        self,
        entries: Sequence[Entry],
        *,
        reason: str,
        attempts: int,
        status: int | None = None,
        response: str | None = None,
    ) -> int:
        """Move entries to the dead letters with why they failed; returns how many.

        Each event is dead-lettered at most once: the dead letters and the
        removal of the events from the queue are one transaction (the chunk
        row is deleted, or the events are recorded as settled if others of
        its events are still pending).
        """
        finished = self._settle(entries)
        now = time.time()
        await self.spool.submit(
            _Write(
                deletes={self.sink_id: finished} if finished else {},
                settled=self._settled_rows(entries, finished),
                dead=[
                    (
                        self.sink_id,
                        e.event_id,
                        e.payload,
                        reason,
                        attempts,
                        status,
                        response,
                        e.enqueued_at,
                        now,
                    )
                    for e in entries
                ],
            ),
            keep=True,
        )
        return len(entries)

    async def dead_letter_new(self, entries: Sequence[tuple[str, bytes, str]], now: float) -> None:
        """Dead-letter events that never entered the queue (untranslatable at ingest)."""
        await self.spool.submit(
            _Write(
                dead=[
                    (self.sink_id, event_id, payload, reason, 0, None, None, now, now)
                    for event_id, payload, reason in entries
                ]
            )
        )

    def release(self, entries: Sequence[Entry]) -> None:
        """Give back entries taken but neither delivered nor dead-lettered (shutdown).

        They are pending again. A memory buffer takes them back, to flush them
        to disk on close; a durable queue has them on disk already and does not
        hand them out again while it is closing (no retries during shutdown).
        """
        self.in_flight -= len(entries)
        if self.durable and self.closed:
            return
        self._hot.extendleft(reversed(entries))
        self._hot_bytes += sum(len(e.payload) for e in entries)
        # A worker may be waiting for a first event (a parked runner gave these back).
        self._wake()
