"""The durable spool: every sink's queue and dead letters in one SQLite database.

Why hand-written: no maintained library offers a durable, Trio-native queue
with group commit; SQLite (stdlib, WAL mode) does the hard part, and this
module adds the batching around it. Its parts:

- **Group commit** (:class:`Spool`, here). Ingest requests submit their
  entries and wait; one writer task commits everything submitted meanwhile
  in one transaction (inserts, acknowledgements and dead letters together)
  in a worker thread, then wakes every waiter. A client is acknowledged only
  after its events are committed.
- **Bounded memory** (:mod:`router.spoolqueue`). Each sink keeps at most
  ``HOT_EVENTS`` events and ``memory_bytes`` (``spool.memory_bytes``) of its
  pending events in memory; beyond that the queue is *spilled* and pages
  events in from the database. Rows hold at most ``CHUNK_EVENTS`` events and
  ``CHUNK_BYTES``, so a page overshoots its budget by less than one chunk (or
  one event larger than ``CHUNK_BYTES``). Memory stays flat however long a
  sink is down and however large its events.
- **Monotonic seqs** (:mod:`router.spooldb`, the tables and statements). Each
  sink has its own table with an AUTOINCREMENT key, so ``seq`` never goes
  back, even when the table empties or ``router dlq replay`` inserts rows
  from another process (found by the watcher, :meth:`Spool._watch_loop`).
- ``buffer: memory`` sinks use the same queues without writing events to the
  database at ingest; at shutdown their leftovers are written so nothing the
  router acknowledged is lost across a clean restart.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import trio

from router import spooldb
from router.errors import StorageError, StorageUnusable
from router.queue import DeadLetter, Entry
from router.spooldb import Write, connect, merge, sink_ids
from router.spoolqueue import HOT_BYTES, HOT_EVENTS, PAGE_EVENTS, SqliteQueue
from router.storage import WriteHealth, describe, make_data_dir, probe_write

__all__ = [
    "HOT_BYTES",
    "HOT_EVENTS",
    "PAGE_EVENTS",
    "DeadLetter",
    "Entry",
    "Spool",
    "SqliteQueue",
    "StorageError",
    "connect",
    "sink_ids",
]

if TYPE_CHECKING:
    from router.roles import Role

log = structlog.get_logger()

#: Most events / payload bytes in one chunk (row) of the queue table; an event
#: larger than ``CHUNK_BYTES`` is a chunk of its own.
CHUNK_EVENTS = 1_000
CHUNK_BYTES = 1 << 20
#: How often the spool looks for rows other processes inserted (dlq replay).
WATCH_INTERVAL = 1.0
#: The same in the delivery process of ``server.delivery: process``, where
#: every new row comes from the ingest process: the most it adds to latency.
HANDOFF_INTERVAL = 0.01
#: In the ingest process of ``server.delivery: process``: how often the
#: pending counts of the queues the other process delivers are read again.
RESYNC_INTERVAL = 0.25
#: While writes fail, how often the writer tries again (a probe write if idle).
PROBE_INTERVAL = 1.0
#: How long a delivered event of a chunk still pending waits before it is
#: recorded as settled. Under load nearly every chunk is finished (its row
#: deleted) within it, and then nothing is written for its events one by one;
#: a crash sends again at most this long's delivered events of partial chunks.
SETTLED_FLUSH = 1.0


class Spool:
    """The SQLite spool of one daemon (one worker process). Owns one writer task.

    ``role`` (:mod:`router.roles`): ``ingest`` writes the durable queues but
    does not hand them out (another process delivers them); ``delivery``
    hands out rows another process wrote, polling for them often.
    """

    def __init__(self, path: Path | str, *, sync: str = "FULL", role: Role = "all"):
        self.path = Path(path)
        self.sync = sync
        self.role = role
        self.queues: dict[str, SqliteQueue] = {}
        #: The same queues by sink id, which commits and the watcher report by.
        self._by_id: dict[int, SqliteQueue] = {}
        self._pending = Write()
        self._waiters: list[trio.Event] = []
        #: Acks and dead letters of delivered batches: kept for the next commit
        #: when one fails, their callers waiting (see :meth:`submit`).
        self._kept = Write()
        self._kept_waiters: list[trio.Event] = []
        #: Deferred settled rows per sink id and chunk seq, and when the oldest came.
        self._settled: dict[int, dict[int, list[tuple[int, str, int]]]] = {}
        self._settled_at: float | None = None
        #: Whether the database can be written now (``/readyz``).
        self.health = WriteHealth(self.path, "spool")
        self._failures: dict[int, BaseException] = {}
        self._skipped: dict[int, dict[int, set[str]]] = {}
        self._work = trio.Event()
        #: Held by a commit until its queues have heard of it, and by a resync.
        self._commit_lock = trio.Lock()
        self._batch_no = 0
        self._closed = False
        self._wlock = threading.Lock()
        self._rlock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._rdb: sqlite3.Connection | None = None
        #: Counts dead letters for the status (opened on first use): a count of a
        #: large table on the reading connection would hold up delivery's page-ins.
        self._cdb: sqlite3.Connection | None = None
        self._clock = threading.Lock()
        self._db_closed = False
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

        def load(db: sqlite3.Connection) -> dict[str, tuple[int, int, int, int, float | None]]:
            try:
                ids = sink_ids(db, [name for name, _ in sinks])
                return {
                    name: (
                        sink_id,
                        *spooldb.pending_counts(db, sink_id),
                        spooldb.oldest_enqueued_at(db, sink_id),
                    )
                    for name, sink_id in ids.items()
                }
            except (sqlite3.Error, OSError) as exc:
                raise StorageUnusable(self.path, describe(self.path, exc, what="spool")) from exc

        if not sinks:
            return
        stats = await trio.to_thread.run_sync(self._locked, load)
        for name, options in sinks:
            sink_id, count, size, max_seq, oldest_at = stats[name]
            with self._wlock:
                self._scanned[sink_id] = max_seq
            queue = SqliteQueue(
                self,
                name,
                sink_id,
                count,
                size,
                max_seq,
                oldest_at=oldest_at,
                hands_out=self.role != "ingest",
                **options,
            )
            self.queues[name] = self._by_id[sink_id] = queue

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer loop, plus the watcher; runs until :meth:`close` is awaited."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_loop)
            if self.role == "ingest":
                nursery.start_soon(self._resync_loop)
            task_status.started()
            while True:
                if self.health.error is not None and not self._closed:
                    with trio.move_on_after(PROBE_INTERVAL) as probe:
                        await self._work.wait()
                    if probe.cancelled_caught:
                        await self._probe()
                        continue
                elif self._settled_at is not None:
                    # Deferred settled rows: written once due; commits before
                    # that drop those whose chunk they delete.
                    with trio.move_on_at(self._settled_at + SETTLED_FLUSH):
                        await self._work.wait()
                else:
                    await self._work.wait()
                self._work = trio.Event()
                if self._pending_empty() and not self._settled_due():
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
        if not self._pending_empty() or self._settled_at is not None:
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
        # Under both locks (in the watcher's order): a worker thread may still be
        # reading, and closing a connection under it crashes the interpreter.
        with self._rlock, self._wlock:
            for db in (self._db, self._rdb):
                if db is not None:
                    db.close()
        with self._clock:
            if self._cdb is not None:
                self._cdb.close()
            self._cdb = None
            self._db_closed = True

    # -- group commit -----------------------------------------------------------

    def _pending_empty(self) -> bool:
        p, k = self._pending, self._kept
        return not (
            p.inserts or p.deletes or p.dead or p.settled or k.deletes or k.dead or k.settled
        )

    async def submit(self, write: Write, *, keep: bool = False) -> dict[int, set[str]]:
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
        merge(p, write)
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

    def defer_settled(self, sink_id: int, rows: Sequence[tuple[int, str, int]]) -> None:
        """Record delivered events ``(seq, event_id, bytes)`` of chunks still pending.

        Written about ``SETTLED_FLUSH`` later, unless their chunk is deleted
        first (then never). It only saves duplicates after a crash: lost in
        one, it costs duplicates, never an event.
        """
        if self._closed:
            return
        by_seq = self._settled.setdefault(sink_id, {})
        for row in rows:
            if row[0] in by_seq:
                by_seq[row[0]].append(row)
            else:
                by_seq[row[0]] = [row]
        if self._settled_at is None:
            self._settled_at = trio.current_time()
            self._work.set()  # the writer may be waiting for work with no deadline

    def _settled_due(self) -> bool:
        if self._settled_at is None:
            return False
        return self._closed or trio.current_time() >= self._settled_at + SETTLED_FLUSH

    def _take_settled(self, into: Write, deleted: Sequence[dict[int, list[Any]]]) -> None:
        """Drop the deferred settled rows of chunks this commit deletes; move the
        rest into ``into`` once due."""
        if self._settled_at is None:
            return
        for deletes in deleted:
            for sink_id, seqs in deletes.items():
                by_seq = self._settled.get(sink_id)
                if by_seq:
                    for seq in seqs:
                        by_seq.pop(seq, None)
        if not any(self._settled.values()):
            self._settled, self._settled_at = {}, None
        elif self._settled_due():
            for sink_id, by_seq in self._settled.items():
                if by_seq:
                    into.settled.setdefault(sink_id, []).extend(
                        row for rows in by_seq.values() for row in rows
                    )
            self._settled, self._settled_at = {}, None

    async def _commit_pending(self) -> None:
        async with self._commit_lock:
            await self._commit_pending_locked()

    async def _commit_pending_locked(self) -> None:
        write, self._pending = self._pending, Write()
        waiters, self._waiters = self._waiters, []
        kept, self._kept = self._kept, Write()
        kept_waiters, self._kept_waiters = self._kept_waiters, []
        # In kept: a failed commit keeps them for the next one.
        self._take_settled(kept, (write.deletes, kept.deletes))
        batch_no = self._batch_no
        self._batch_no += 1
        combined = Write(
            dict(write.inserts),
            dict(write.deletes),
            list(write.dead),
            write.dedup,
            dict(write.settled),
        )
        merge(combined, kept)
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
            merge(kept, self._kept)
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

    def _commit(self, write: Write) -> tuple[dict[int, list[Entry]], dict[int, set[str]]]:
        """One transaction (worker thread): the inserted entries and skipped ids per sink."""
        with self._wlock:
            committed, skipped = spooldb.commit(
                self._db, write, chunk_events=CHUNK_EVENTS, chunk_bytes=CHUNK_BYTES
            )
            # Recorded under the write lock, before the queues hear of the commit:
            # the watcher must not take these rows for another process's.
            for sink_id, entries in committed.items():
                if entries:
                    self._own_rows.setdefault(sink_id, []).extend({e.seq: None for e in entries})
            return committed, skipped

    # -- reading ---------------------------------------------------------------

    async def read_page(
        self, sink_id: int, after: Any, events: int, size: int, upto: int | None = None
    ) -> list[tuple[int, int, list[Entry]]]:
        """:func:`router.spooldb.read_page` in a worker thread, on the reading connection.

        The delivery process reads only up to ``upto``, the rows its watcher
        has counted, so what it hands out is always pending already.

        :raises StorageError: the database could not be read (damaged).
        """
        if self.role != "delivery":
            upto = None

        def read() -> list[tuple[int, int, list[Entry]]]:
            with self._rlock:
                return spooldb.read_page(self._rdb, sink_id, after, events, size, upto)

        try:
            return await trio.to_thread.run_sync(read)
        except sqlite3.Error as exc:
            raise StorageError(f"could not read the spool: {exc}") from exc

    async def dead_letter_counts(self) -> dict[str, int]:
        """Sink name -> dead letters stored, read on a connection of its own.

        :raises StorageError: the database could not be read (damaged).
        """

        def count() -> dict[str, int]:
            with self._clock:
                if self._db is None or self._db_closed:
                    return {}
                if self._cdb is None:
                    self._cdb = connect(self.path, sync=self.sync)
                return spooldb.dead_letter_counts(self._cdb)

        try:
            return await trio.to_thread.run_sync(count)
        except sqlite3.Error as exc:
            raise StorageError(f"could not read the spool: {exc}") from exc

    async def _watch_loop(self) -> None:
        """Notice rows inserted by other processes (``router dlq replay``; the
        ingest process, seen from the delivery process)."""
        interval = HANDOFF_INTERVAL if self.role == "delivery" else WATCH_INTERVAL
        while True:
            await trio.sleep(interval)
            try:
                found = await trio.to_thread.run_sync(self._scan_foreign)
            except sqlite3.Error as exc:
                log.warning("spool.watch_failed", error=str(exc))
                continue
            for sink_id, (max_seq, count, size) in found.items():
                self._by_id[sink_id].on_foreign_rows(max_seq, count, size)

    async def _resync_loop(self) -> None:
        """Read the pending counts of the queues another process delivers, now and then.

        Between commits (under the commit lock), so no commit this spool made
        is counted twice: once in the database and once more by its queue.
        """
        while True:
            await trio.sleep(RESYNC_INTERVAL)
            queues = [q for q in self.queues.values() if not q.hands_out]
            if not queues:
                continue

            async with self._commit_lock:
                try:
                    counts = await trio.to_thread.run_sync(
                        self._locked, partial(_read_counts, [q.sink_id for q in queues])
                    )
                except sqlite3.Error as exc:
                    log.warning("spool.resync_failed", error=str(exc))
                    continue
                for queue, (count, size, oldest_at) in zip(queues, counts, strict=True):
                    queue.resync(count, size, oldest_at)

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
                scanned = self._scanned.get(sink_id, 0)
                own = self._own_rows.pop(sink_id, ())
                new = spooldb.scan_foreign(self._rdb, sink_id, scanned, own)
                if new is None:
                    continue
                self._scanned[sink_id] = new[0]
                if new[1]:
                    found[sink_id] = new
        return found


def _read_counts(sink_ids: Sequence[int], db: sqlite3.Connection) -> list[tuple[int, int, Any]]:
    """Each sink's pending ``(events, bytes, oldest enqueue time or None)``."""
    return [
        (*spooldb.pending_counts(db, sink_id)[:2], spooldb.oldest_enqueued_at(db, sink_id))
        for sink_id in sink_ids
    ]
