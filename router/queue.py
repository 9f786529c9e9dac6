"""The queue of one sink, as ingest, delivery and the CLI see it.

:class:`SinkQueue` is what every queue kind implements:
:class:`router.spool.SqliteQueue` (``buffer: disk`` and ``memory``, one
SQLite spool per daemon) and :class:`router.redisqueue.RedisQueue`
(``buffer: redis``, a stream shared by every daemon). Ingest calls
:meth:`~SinkQueue.full`, :meth:`~SinkQueue.put` and
:meth:`~SinkQueue.dead_letter_new`; a :class:`~router.delivery.SinkRunner`
calls :meth:`~SinkQueue.get_batch` and settles each entry it took with
exactly one of :meth:`~SinkQueue.ack`, :meth:`~SinkQueue.dead_letter` or
:meth:`~SinkQueue.release`.

Every implementation guarantees (``docs/delivery.md``, Fault matrix):

- **At least once.** An event :meth:`~SinkQueue.put` returned for is
  delivered, dead-lettered or still pending, across restarts and crashes
  (``buffer: memory``: across clean restarts). Only an acknowledgement
  that was not yet written when the process died sends it again.
- **At most one dead letter per event and sink.** Removing the event from
  the queue and writing its dead letter are one atomic step, so a restart,
  a kill -9, a retried call or a second daemon never writes a second one.
  A ``router dlq replay`` puts the event back; failing again is a new dead
  letter, and the old one is gone.
- **Counters that add up.** ``recovered`` (pending when the queue was
  opened), plus what ``put`` stored, plus what :attr:`~SinkQueue.on_replayed`
  reported (plus, for Redis, what ``on_stored_unacknowledged`` reported)
  equals what was acknowledged, plus what was dead-lettered, plus
  ``pending_events``. With several Redis daemons it holds over the sum of
  their counters, as ``pending_events`` is the shared stream's.

:class:`DeadLetterStore` is what ``router dlq`` uses: the spool's
:class:`router.deadletters.DeadLetters` or Redis's
:class:`router.redisqueue.SyncDeadLetters`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from typing import Any, NamedTuple, Protocol, runtime_checkable

from router.errors import StorageError, StorageUnusable

__all__ = [
    "STATISTICS",
    "BufferedQueue",
    "DeadLetter",
    "DeadLetterStore",
    "Entry",
    "Failure",
    "QueueBounds",
    "SinkQueue",
    "StorageError",
    "StorageUnusable",
    "payload_bytes",
]

#: The keys every queue's :meth:`SinkQueue.statistics` has (a kind may add more).
#: ``oldest_age``: seconds since the event at the head of the queue (the next
#: to deliver, or in flight) was enqueued, 0 when nothing is pending.
STATISTICS = (
    "pending_events",
    "pending_bytes",
    "in_flight",
    "in_memory",
    "spilled",
    "oldest_age",
)


class Entry(NamedTuple):
    """One queued event for one sink.

    ``seq`` is the queue's own position: an int row seq in the spool
    (negative for a memory buffer), a stream id string in Redis.
    """

    seq: Any
    event_id: str
    payload: bytes
    enqueued_at: float


_PAYLOAD = itemgetter(2)


def payload_bytes(entries: Iterable[Entry]) -> int:
    """The payload bytes of ``entries``, summed without a Python-level loop."""
    return sum(map(len, map(_PAYLOAD, entries)))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered event with why it failed."""

    id: int
    sink: str
    event_id: str
    payload: bytes
    reason: str
    attempts: int
    status: int | None
    response: str | None
    enqueued_at: float
    dead_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sink": self.sink,
            "event_id": self.event_id,
            "payload": self.payload.decode("utf-8", "replace"),
            "reason": self.reason,
            "attempts": self.attempts,
            "status": self.status,
            "response": self.response,
            "enqueued_at": self.enqueued_at,
            "dead_at": self.dead_at,
        }


@runtime_checkable
class SinkQueue(Protocol):
    """One sink's queue: what ingest stores into and its runner delivers from."""

    #: The sink's name.
    name: str
    #: Whether pending events survive a restart without :meth:`close` flushing
    #: them; a runner stops retrying at shutdown only for a durable queue.
    durable: bool
    #: Seconds an event id is remembered to skip a repeat, or None (no ``dedup``).
    dedup_window: float | None
    #: Events and payload bytes not yet delivered or dead-lettered, in flight
    #: included; what :meth:`full` bounds. Redis: the shared stream's.
    pending_events: int
    pending_bytes: int
    #: The bounds of ``spool.max_events`` and ``spool.max_bytes``.
    max_events: int
    max_bytes: int
    #: Events handed out by :meth:`get_batch` and not yet settled.
    in_flight: int
    #: Events pending when the queue was opened: what a previous run left
    #: (``router_sink_events_recovered_total``). Redis: once connected.
    recovered: int
    #: Set by :meth:`close`.
    closed: bool
    #: Called with the number of dead letters ``router dlq replay`` put back
    #: while running (``router_sink_events_replayed_total``); None for no one.
    on_replayed: Callable[[int], None] | None

    def full(self, events: int = 0, size: int = 0) -> bool:
        """True if ``events`` more events of ``size`` payload bytes would exceed the bounds."""
        ...

    def statistics(self) -> dict[str, Any]:
        """A snapshot for ``/readyz`` and the metrics: at least the keys of :data:`STATISTICS`."""
        ...

    async def put(self, entries: Sequence[tuple[str, bytes]], now: float) -> int:
        """Store ``(event_id, payload)`` events enqueued at ``now``; returns once stored.

        Returns how many were stored: all of them, less those ``dedup``
        skipped as repeats. Never returns for events not stored.

        :raises StorageError: nothing was stored, or the outcome is unknown
            (the client is told to retry).
        """
        ...

    async def dead_letter_new(self, entries: Sequence[tuple[str, bytes, str]], now: float) -> None:
        """Dead-letter ``(event_id, payload, reason)`` events that never entered the queue.

        :raises StorageError: they were not stored.
        """
        ...

    async def get_batch(self, max_events: int, max_bytes: int, max_wait: float) -> list[Entry]:
        """The next batch, oldest first: at most ``max_events`` events and ``max_bytes``.

        Waits for a first entry, then up to ``max_wait`` seconds to fill the
        batch. An entry larger than ``max_bytes`` comes alone. Returns ``[]``
        only once the queue is closed and has nothing more to hand out.

        :raises StorageError: the spool could not read a page of a spilled
            queue (a damaged database); a Redis queue waits for Redis instead.
        """
        ...

    async def ack(self, entries: Sequence[Entry]) -> None:
        """Entries of :meth:`get_batch` were delivered: they are not handed out again.

        Storage failures are retried, not raised; an acknowledgement not
        yet written when the process dies sends its events again.
        """
        ...

    async def dead_letter(
        self,
        entries: Sequence[Entry],
        *,
        reason: str,
        attempts: int,
        status: int | None = None,
        response: str | None = None,
    ) -> int:
        """Move entries of :meth:`get_batch` to the dead letters, with why they failed.

        Returns how many dead letters were written: fewer than ``entries``
        if some had been settled elsewhere already (at most one per event).
        Retried until stored, never raised.
        """
        ...

    def release(self, entries: Sequence[Entry]) -> None:
        """Give back entries of :meth:`get_batch` neither delivered nor dead-lettered.

        They are pending again, for this run (memory buffers) or the next.
        """
        ...

    def close(self) -> None:
        """No more batches after those in memory (shutdown); then :meth:`get_batch` gives ``[]``.

        Storage stays open: the spool or Redis link that made the queue
        flushes and closes it.
        """
        ...


class QueueBounds:
    """:meth:`SinkQueue.full` from ``pending_*`` and ``max_*``, shared by every queue kind."""

    pending_events: int
    pending_bytes: int
    max_events: int
    max_bytes: int

    def full(self, events: int = 0, size: int = 0) -> bool:
        """True if ``events`` more events of ``size`` payload bytes would exceed the bounds."""
        return (
            self.pending_events + events > self.max_events
            or self.pending_bytes + size > self.max_bytes
        )


@dataclass(frozen=True, slots=True)
class Failure:
    """Why entries are dead-lettered, as :meth:`SinkQueue.dead_letter` was told, and when."""

    reason: str
    attempts: int
    status: int | None
    response: str | None
    at: float


class BufferedQueue(QueueBounds):
    """What every queue kind does alike around its buffer of entries ready to hand out.

    The statistics, taking a batch from the buffer within its bounds, and the
    :meth:`SinkQueue.dead_letter` call; a kind fills the buffer and writes the
    dead letters (:meth:`_dead_letter`) its own way.
    """

    in_flight: int
    #: Whether pending events are on disk only, not in the buffer (the spool's spilled queue).
    spilled: bool = False
    _buffer: deque[Entry]

    def statistics(self) -> dict[str, Any]:
        """The keys of :data:`STATISTICS`, and those of :meth:`_more_statistics`."""
        oldest = self._oldest_at() if self.pending_events > 0 else None
        return {
            "pending_events": self.pending_events,
            "pending_bytes": self.pending_bytes,
            "in_flight": self.in_flight,
            "in_memory": len(self._buffer),
            "spilled": self.spilled,
            "oldest_age": 0.0 if oldest is None else max(0.0, time.time() - oldest),
            **self._more_statistics(),
        }

    def _more_statistics(self) -> dict[str, Any]:
        return {}

    def _oldest_at(self) -> float | None:
        """The enqueue time of the event at the head of the queue, if known."""
        raise NotImplementedError

    def _take(self, batch: list[Entry], size: int, max_events: int, max_bytes: int) -> int:
        """Move entries from the buffer to ``batch`` while they fit; returns the batch's bytes.

        The first entry of a batch always fits, however large.
        """
        buffer = self._buffer
        room = min(max_events - len(batch), len(buffer))
        if room > 0:
            # Usually all that is wanted fits: taken at once, no check per event.
            wanted = payload_bytes(islice(buffer, room))
            if size + wanted <= max_bytes or (not batch and room == 1):
                popleft = buffer.popleft
                batch += [popleft() for _ in range(room)]
                return size + wanted
        while buffer and len(batch) < max_events:
            n = len(buffer[0].payload)
            if batch and size + n > max_bytes:
                break
            batch.append(buffer.popleft())
            size += n
        return size

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

        At most one dead letter per event, retried until stored (see :class:`SinkQueue`).
        """
        failure = Failure(reason, attempts, status, response, time.time())
        return await self._dead_letter(entries, failure)

    async def _dead_letter(self, entries: Sequence[Entry], failure: Failure) -> int:
        raise NotImplementedError


@runtime_checkable
class DeadLetterStore(Protocol):
    """The dead letters of every sink of one storage, for ``router dlq``."""

    def count(self, sink: str) -> int:
        """How many dead letters ``sink`` has."""
        ...

    def list(self, sink: str, *, offset: int = 0, limit: int = 100) -> list[DeadLetter]:
        """Dead letters of ``sink``, oldest first."""
        ...

    def get(self, sink: str, letter_id: int) -> DeadLetter | None:
        """One dead letter of ``sink`` by id, or None."""
        ...

    def replay(
        self,
        sink: str,
        ids: Sequence[int] | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Move dead letters (all, or ``ids``) back into the sink's queue; returns how many."""
        ...

    def purge(self, sink: str, ids: Sequence[int] | None = None) -> int:
        """Delete dead letters (all, or ``ids``); returns how many."""
        ...
