"""One sink's queue in the spool: the in-memory window, paging in a spilled queue, settling.

A :class:`SqliteQueue` keeps at most ``HOT_EVENTS`` events and ``memory_bytes``
of its pending events in memory; beyond that it is *spilled* and pages events
in from the database (:meth:`Spool.read_page <router.spool.Spool.read_page>`)
in ``seq`` order, one page of at most ``PAGE_EVENTS`` events and
``memory_bytes`` at a time, and only once the previous page is handed out.
Everything it writes goes through its :class:`~router.spool.Spool`'s group commit.

A queue that another process delivers (``hands_out=False``: the ingest
process of ``server.delivery: process``) only counts: it keeps no event in
memory, and :meth:`SqliteQueue.resync` sets its counts from the database,
where the delivering process deletes what it delivered.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from itertools import groupby
from operator import attrgetter
from typing import TYPE_CHECKING

import trio

from router.config.settings import SpoolConfig
from router.queue import BufferedQueue, Entry, Failure, payload_bytes
from router.spooldb import Write

if TYPE_CHECKING:
    from router.spool import Spool

__all__ = ["HOT_BYTES", "HOT_EVENTS", "PAGE_EVENTS", "SqliteQueue"]

#: Most events / bytes a sink keeps in memory before spilling to the database
#: (the bytes are the default of ``spool.memory_bytes``).
HOT_EVENTS = 20_000
HOT_BYTES = SpoolConfig().memory_bytes

#: Events read per page when a spilled queue catches up; a page also stops at
#: the queue's ``memory_bytes`` (whole chunks: the chunk that crosses either
#: budget is read too, so a page has at least one).
PAGE_EVENTS = 5_000

_ENQUEUED_AT = attrgetter("enqueued_at")
_SEQ = attrgetter("seq")


class SqliteQueue(BufferedQueue):
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
        oldest_at: float | None = None,
        hands_out: bool = True,
    ):
        self.spool = spool
        self.name = name
        self.sink_id = sink_id
        self.durable = durable
        #: False: another process delivers this queue; here it only counts (see resync).
        self.hands_out = hands_out or not durable
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
        #: While spilled: the enqueue time of the oldest event on disk only, or
        #: a lower bound (``oldest_at``: the first row's, read at open).
        self._spilled_at = oldest_at if count > 0 else None
        #: Memory buffers (whose entries have no chunk): the enqueue times of
        #: the entries in flight, each with how many.
        self._taken_at: dict[float, int] = {}
        #: The hot window: entries in memory, ready to hand out.
        self._buffer: deque[Entry] = deque()
        self._hot_bytes = 0
        self._memory_seq = 0
        #: Events of each chunk in memory or in flight not yet delivered or
        #: dead-lettered; the chunk's row is deleted when it reaches zero.
        self._chunk_left: dict[int, int] = {}
        #: The enqueue time of each of those chunks, in seq order: the first is the oldest.
        self._chunk_at: dict[int, float] = {}
        self._changed = trio.Event()
        self._take_lock = trio.Lock()
        self.closed = False

    # -- state -----------------------------------------------------------------

    def _more_statistics(self) -> dict[str, int]:
        return {"in_memory_bytes": self._hot_bytes}

    def _oldest_at(self) -> float | None:
        """The first chunk in memory or in flight, the memory entries in flight, the
        buffer's head, and the first event on disk only: the oldest of those."""
        times = list(self._taken_at)
        if self._chunk_at:
            times.append(next(iter(self._chunk_at.values())))
        if self._buffer:
            times.append(self._buffer[0].enqueued_at)
        if self.spilled and self._spilled_at is not None:
            times.append(self._spilled_at)
        return min(times, default=None)

    def _count_taken(self, entries: Sequence[Entry], change: int) -> None:
        """Count a memory buffer's entries into (1) or out of (-1) those in flight.

        By runs of one enqueue time (one request's events are adjacent), so
        a batch costs a few dict updates, not one per event.
        """
        if self.durable:
            return  # their chunks tell
        taken = self._taken_at
        for at, run in groupby(map(_ENQUEUED_AT, entries)):
            left = taken.get(at, 0) + change * len(list(run))
            if left:
                taken[at] = left
            else:
                del taken[at]

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
            write = Write(inserts={self.sink_id: rows})
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
        size = payload_bytes(entries)
        self.pending_events += len(entries)
        self.pending_bytes += size
        if not self.durable:
            # Memory buffers never spill: ingest bounds them with full().
            self._buffer.extend(entries)
            self._hot_bytes += size
        elif not self.hands_out:
            self.committed_upto = max(self.committed_upto, entries[-1].seq)
            if self._spilled_at is None:
                self._spilled_at = entries[0].enqueued_at
            self.spilled = True
        else:
            # All the entries of one commit are one chunk (one row, one seq).
            contiguous = entries[0].seq == self.committed_upto + 1
            # max(): the watcher may have reported later rows of another process first.
            self.committed_upto = max(self.committed_upto, entries[-1].seq)
            # The reading connection may have paged these rows in before the
            # writer reported them: they are in memory already, or (a page that
            # stopped inside this commit) the rest is read by the next page.
            paged_in = entries[0].seq <= self.loaded_upto
            if paged_in and entries[-1].seq <= self.loaded_upto:
                self._wake()
                return
            if (
                not self.spilled
                and not paged_in
                and contiguous
                and len(self._buffer) + len(entries) <= HOT_EVENTS
                and self._hot_bytes + size <= self.memory_bytes
            ):
                self._buffer.extend(entries)
                self._hot_bytes += size
                left, chunk_at = self._chunk_left, self._chunk_at
                # One commit may span several chunks; a chunk's time is its first event's.
                backwards = entries[::-1]
                first_at = dict(
                    zip(map(_SEQ, backwards), map(_ENQUEUED_AT, backwards), strict=True)
                )
                for seq, count in Counter(map(_SEQ, entries)).items():
                    if seq in left:
                        left[seq] += count
                    else:
                        left[seq] = count
                        chunk_at[seq] = first_at[seq]
                self.loaded_upto = self.committed_upto
            else:
                if not self.spilled:
                    self._spilled_at = entries[0].enqueued_at
                self.spilled = True
        self._wake()

    def on_foreign_rows(self, max_seq: int, count: int, size: int) -> None:
        """Another process added ``count`` events in rows up to ``max_seq`` (dlq replay)."""
        self.committed_upto = max(self.committed_upto, max_seq)
        self.pending_events += count
        self.pending_bytes += size
        if not self.spilled:
            # Known once paged in (a replay keeps the event's enqueue time); until then, now.
            self._spilled_at = time.time()
        self.spilled = True
        if self.on_replayed is not None:
            self.on_replayed(count)
        self._wake()

    def resync(self, count: int, size: int, oldest_at: float | None) -> None:
        """The pending counts read from the database (a queue another process delivers)."""
        self.pending_events = count
        self.pending_bytes = size
        self.spilled = count > 0
        self._spilled_at = oldest_at if count > 0 else None
        self._wake()

    def drain_memory(self) -> list[Entry]:
        """Memory-only entries not yet taken, removed from the queue (shutdown)."""
        out = [e for e in self._buffer if e.seq < 0]
        self._buffer = deque(e for e in self._buffer if e.seq > 0)
        self._hot_bytes = payload_bytes(self._buffer)
        return out

    # -- reading -----------------------------------------------------------------

    async def _load_page(self) -> None:
        # Called only when the hot window is empty, so memory holds one page at most.
        chunks = await self.spool.read_page(
            self.sink_id, self.loaded_upto, PAGE_EVENTS, self.memory_bytes, self.committed_upto
        )
        for seq, count, entries in chunks:
            self._buffer.extend(entries)
            self._hot_bytes += payload_bytes(entries)
            self._chunk_left[seq] = count
            self._chunk_at[seq] = entries[0].enqueued_at
        if chunks:
            self.loaded_upto = chunks[-1][0]
            # The rows after the page came later: its last one's time bounds theirs.
            self._spilled_at = chunks[-1][2][-1].enqueued_at
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
            while not self._buffer:
                if self.spilled and not self.closed:
                    await self._load_page()
                    continue
                if self.closed:
                    return []
                await self._changed.wait()
            batch: list[Entry] = []
            size = 0
            deadline = trio.current_time() + max_wait
            while True:
                taken = self._take(batch, size, max_events, max_bytes)
                self._hot_bytes -= taken - size
                size = taken
                if len(batch) >= max_events or self._buffer:
                    break  # full, by events or by bytes
                if self.spilled and not self.closed:
                    await self._load_page()
                    continue
                if self.closed or trio.current_time() >= deadline:
                    break
                with trio.move_on_at(deadline):
                    await self._changed.wait()
            self.in_flight += len(batch)
            self._count_taken(batch, 1)
            return batch

    # -- finishing ----------------------------------------------------------------

    def _settle(self, entries: Sequence[Entry]) -> tuple[list[int], list[tuple[int, str, int]]]:
        """Count entries as done. Returns the chunks (row seqs) now done as a whole,
        and the settled-event rows ``(seq, event_id, bytes)`` of the entries whose
        chunk is still pending."""
        self.in_flight -= len(entries)
        self._count_taken(entries, -1)
        self.pending_events -= len(entries)
        self.pending_bytes -= payload_bytes(entries)
        finished = []
        partial = set()
        left = self._chunk_left
        # Per chunk, not per event: a batch holds a few chunks' runs of events.
        for seq, count in Counter(map(_SEQ, entries)).items():
            if seq > 0:
                left[seq] -= count
                if left[seq]:
                    partial.add(seq)
                else:
                    del left[seq]
                    del self._chunk_at[seq]
                    finished.append(seq)
        if not partial:
            return finished, []
        return finished, [(e.seq, e.event_id, len(e.payload)) for e in entries if e.seq in partial]

    async def ack(self, entries: Sequence[Entry]) -> None:
        """The entries were delivered: delete each chunk whose events are all done.

        The others are recorded as settled a little later unless their chunk
        is done by then, so a restart does not send them again; the deletes
        are waited for.
        """
        finished, settled = self._settle(entries)
        if settled:
            self.spool.defer_settled(self.sink_id, settled)
        if finished:
            await self.spool.submit(Write(deletes={self.sink_id: finished}), keep=True)

    async def _dead_letter(self, entries: Sequence[Entry], failure: Failure) -> int:
        """Each event is dead-lettered at most once: the dead letters and the
        removal of the events from the queue are one transaction (the chunk
        row is deleted, or the events are recorded as settled if others of
        its events are still pending).
        """
        finished, settled = self._settle(entries)
        f = failure
        dead = [
            (
                self.sink_id,
                e.event_id,
                e.payload,
                f.reason,
                f.attempts,
                f.status,
                f.response,
                e.enqueued_at,
                f.at,
            )
            for e in entries
        ]
        write = Write(
            deletes={self.sink_id: finished} if finished else {},
            settled={self.sink_id: settled} if settled else {},
            dead=dead,
        )
        await self.spool.submit(write, keep=True)
        return len(entries)

    async def dead_letter_new(self, entries: Sequence[tuple[str, bytes, str]], now: float) -> None:
        """Dead-letter events that never entered the queue (untranslatable at ingest)."""
        await self.spool.submit(
            Write(
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
        self._count_taken(entries, -1)
        if self.durable and self.closed:
            return
        self._buffer.extendleft(reversed(entries))
        self._hot_bytes += payload_bytes(entries)
        # A worker may be waiting for a first event (a parked runner gave these back).
        self._wake()
