"""``buffer: redis``: a sink's queue in a Redis Stream shared by every daemon.

A :class:`~router.queue.SinkQueue` (what ingest and a
:class:`~router.delivery.SinkRunner` use), on one stream per sink with one
consumer group; each daemon reads as its own consumer.

- **put** runs one Lua script per group of puts: XADD of every event (after
  ``SET NX PX`` of its id for sinks with ``dedup``) and the stream's byte
  count, in one atomic round trip. Puts that arrive while one is on its way
  go together in the next call, as a database's group commit does: one
  round trip for many requests under load, none added when idle. A put
  returns only once Redis answered for it; any error raises
  :class:`~router.errors.StorageError`, so ingest answers 503 and
  acknowledges nothing.
- **get_batch** hands out, in order: entries this consumer had taken before
  a restart (XPENDING + XCLAIM), entries other consumers left idle longer
  than ``claim_idle`` (XAUTOCLAIM, at most every ``claim_idle / 2``), then
  new ones (XREADGROUP ``>``, blocking at most a second at a time). Each
  read asks for the entries the batch still lacks, and fewer when entries
  are large: about the batch's remaining ``max_bytes``, estimated from the
  stream's average entry and the largest entry of the previous read (at
  least one), so large events never make a read hold many times a batch.
- **ack** is XACK + XDEL in one script. Deleting, rather than acknowledging
  and trimming later, keeps XLEN equal to what is still to deliver, which is
  the shared ``pending_events`` that bounds ``full()``; a stream cannot be
  trimmed below its oldest unacknowledged entry anyway, so a periodic trim
  would need the group's state to know how far it may go. Acks are not
  grouped as puts are: each acks a whole batch (up to the sink's
  ``batch.max_events``), so a few a second per worker, and in the benchmark
  no two were ever on their way at once (docs/performance.md).
- **Heartbeat.** Entries a daemon holds (in flight, or read and waiting)
  have their idle time reset every ``claim_idle / 3`` (XCLAIM JUSTID to
  itself), so a batch retried for minutes against a failing upstream is not
  claimed by another daemon; only a dead or cut-off daemon's entries are.
- **Dead letters** go to ``{<prefix>:<sink>}:dead``, a stream whose ids are
  ``0-<n>``: ``n`` is the dead letter's number for ``router dlq``.
- **Redis down.** ``put`` and ``dead_letter_new`` raise at once (503);
  ``get_batch``, ``ack`` and ``dead_letter`` retry with backoff and jitter
  until Redis answers or the runner is cancelled; nothing raises into the
  runner. An entry whose ack could not be written stays pending and is
  delivered again (at least once).

Counters with several daemons: ``pending_events``/``pending_bytes`` are the
shared stream's (refreshed every ``refresh_interval``, adjusted at once by
this daemon's own puts and acks), and so is ``oldest_age`` (the enqueue
time of the stream's first entry, read at the same refresh); ``in_flight``
is this daemon's; the metrics (accepted, delivered, dead-lettered) count
what this daemon did.
"""

from __future__ import annotations

import copy
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
import trio
from coredis.exceptions import RedisError

from router.config.settings import SpoolConfig
from router.queue import BufferedQueue, DeadLetter, Entry, Failure, StorageError
from router.redisconn import RedisLink, RedisUnavailable
from router.redisdead import RedisDeadLetters, SyncDeadLetters
from router.redisscripts import ACK, CHUNK, DEAD, PUT, REQUEUE
from router.redisstream import GROUP, MAX_BLOCK, StreamConsumer, changing_counts, order
from router.retry import Backoff

__all__ = [
    "GROUP",
    "DeadLetter",
    "Entry",
    "RedisDeadLetters",
    "RedisQueue",
    "StorageError",
    "SyncDeadLetters",
]

log = structlog.get_logger()

#: How many times a batch that is not full looks for more entries within ``max_wait``.
FILL_LOOKS = 4


def _own_copy(exc: BaseException) -> StorageError:
    """``exc`` as a StorageError of the same kind and message, with no traceback."""
    if isinstance(exc, StorageError):
        clone = copy.copy(exc)
    else:
        clone = StorageError(f"redis: could not store the events: {type(exc).__name__}")
    clone.__cause__ = exc.__cause__ if isinstance(exc, StorageError) else exc
    return clone


@dataclass(slots=True)
class _Put:
    """One caller's events in a group of puts, and what Redis said about them."""

    now: float
    #: The events' ids; they and the payloads joined by newlines: the script's arguments.
    ids: list[str]
    joined_ids: str
    payloads: bytes
    done: bool = False
    stored: int = 0
    error: BaseException | None = None


class RedisQueue(StreamConsumer, BufferedQueue):
    """One sink's queue in a Redis Stream, a :class:`~router.queue.SinkQueue`; see the module.

    ``full()`` bounds the *shared* stream: its length as last read from
    Redis plus what this daemon stored since.
    """

    durable = True

    def __init__(
        self,
        link: RedisLink,
        name: str,
        *,
        max_events: int = SpoolConfig().max_events,
        max_bytes: int = SpoolConfig().max_bytes,
        dedup_window: float | None = None,
        on_stored_unacknowledged: Callable[[int], None] | None = None,
    ):
        self.link = link
        self.name = name
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.dedup_window = dedup_window
        self.group = GROUP
        self.consumer = link.consumer
        self.claim_idle = link.config.claim_idle
        self.stream = link.key(name, "stream")
        self.bytes_key = link.key(name, "bytes")
        self.dead = link.key(name, "dead")
        self.pending_events = 0
        self.pending_bytes = 0
        #: Local changes to the counts (applied, and in flight): a refresh read
        #: that overlapped one would overwrite it with an older snapshot.
        self._count_version = 0
        self._count_changes_in_flight = 0
        self._stale_refreshes = 0
        self.recovered = 0
        #: The enqueue time of the stream's first entry, read with the counts.
        self._head_at: float | None = None
        self.in_flight = 0
        self.claimed = 0
        #: Called with the number of dead letters replayed into the stream (``dlq replay``).
        self.on_replayed: Callable[[int], None] | None = None
        #: Called with the number of events a put stored although its caller was
        #: told it failed (the reply was lost); they will be delivered. Only a
        #: Redis queue can do that, so it is not part of SinkQueue.
        self.on_stored_unacknowledged = on_stored_unacknowledged
        #: Tokens of puts whose outcome is unknown, resolved in upkeep().
        self._unconfirmed: list[str] = []
        #: Puts waiting for the next call, whether one is on its way, and its end.
        self._waiting: list[_Put] = []
        self._putting = False
        self._put_done = trio.Event()
        self.closed = False
        self._opened = False
        self._own_pending_done = False
        self._opened_at_id = "0-0"
        self._buffer: deque[Entry] = deque()
        #: Entry ids read from Redis and not yet acked, dead-lettered or given back.
        self._held: set[str] = set()
        self._claim_cursor = "0-0"
        #: Largest payload of the last read: with the stream's average, sizes the next read.
        self._largest_read = 0
        self._next_claim = 0.0
        self._next_heartbeat = 0.0
        self._take_lock = trio.Lock()
        self._read_scope: trio.CancelScope | None = None
        self._backoff = Backoff(
            link.config.reconnect_initial_backoff, link.config.reconnect_max_backoff
        )
        link.queues.append(self)

    # -- state -----------------------------------------------------------------

    def _more_statistics(self) -> dict[str, Any]:
        return {"claimed": self.claimed, "redis_up": self.link.up}

    def _oldest_at(self) -> float | None:
        return self._head_at

    def close(self) -> None:
        """No more batches (shutdown); what this daemon holds is given back by :meth:`aclose`."""
        self.closed = True
        if self._read_scope is not None:
            self._read_scope.cancel()

    # -- writing -------------------------------------------------------------------

    async def put(self, entries: Sequence[tuple[str, bytes]], now: float) -> int:
        """Store events in the stream; returns how many (fewer if ``dedup`` skipped some).

        Joins the next group of puts; the first caller to find none on its
        way sends the group (see the module).

        :raises StorageError: Redis did not store them (nothing was, or the
            outcome is unknown: the client is told to retry).
        """
        if not entries:
            return 0
        ids = [event_id for event_id, _ in entries]
        payloads = b"\n".join(payload for _, payload in entries)
        if payloads.count(b"\n") != len(ids) - 1:  # JSON as orjson writes it has none
            raise ValueError("a queued payload must be JSON without raw newlines")
        joined = "\n".join(ids)
        if joined.count("\n") != len(ids) - 1:
            raise ValueError("an event id must not hold a newline")
        mine = _Put(now, ids, joined, payloads)
        self._waiting.append(mine)
        while not mine.done:
            if self._putting:
                await self._put_done.wait()
                continue
            self._putting = True
            group, self._waiting = self._waiting, []
            try:
                # Shielded: the group holds other requests' events, and Redis
                # answers within command_timeout.
                with trio.CancelScope(shield=True):
                    await self._put_group(group)
            finally:
                self._putting = False
                finished, self._put_done = self._put_done, trio.Event()
                finished.set()
        if mine.error is not None:
            raise mine.error
        return mine.stored

    async def _put_group(self, group: list[_Put]) -> None:
        """One script call for every put of ``group``; each gets its count or its error."""
        # The script also records how many it stored under a token, so a put whose
        # reply is lost (Redis died mid-call) can be resolved later: see upkeep().
        token = uuid.uuid4().hex
        keys = [self.stream, self.bytes_key, self.link.key(self.name, "put", token)]
        window = ""
        if self.dedup_window is not None:
            window = str(max(1, round(self.dedup_window * 1000)))
        args: list[Any] = [window]
        for put in group:
            args += [len(put.ids), repr(put.now), put.joined_ids, put.payloads]
            if self.dedup_window is not None:
                keys += [self.link.key(self.name, "dedup", event_id) for event_id in put.ids]
        try:
            with changing_counts(self):
                try:
                    await self._ensure_group()
                    reply = await self._call("put", lambda c: self.link.eval(c, PUT, keys, args))
                except RedisUnavailable as exc:
                    if exc.__cause__ is not None:
                        # Sent, and the reply was lost: it may have been stored.
                        self._unconfirmed.append(token)
                    raise
                except RedisError as exc:
                    raise StorageError(f"redis: could not store the events: {exc}") from exc
                size, *counts = (int(n) for n in reply)
                stored = sum(counts)
                if stored and (self._head_at is None or self.pending_events == 0):
                    self._head_at = group[0].now  # the first entry, until the next refresh
                self.pending_events += stored
                self.pending_bytes += size
        except BaseException as exc:
            # Every caller raises an error of its own: one instance raised in
            # several tasks would collect all their tracebacks.
            for put in group:
                put.error = _own_copy(exc)
                put.done = True
            if not isinstance(exc, StorageError):
                raise  # a bug: the sender's request fails with it, the others with a copy
            return
        for put, count in zip(group, counts, strict=True):
            put.stored, put.done = count, True

    async def dead_letter_new(self, entries: Sequence[tuple[str, bytes, str]], now: float) -> None:
        """Dead-letter events that never entered the queue (untranslatable at ingest)."""
        by_reason: dict[str, list[tuple[str, bytes]]] = {}
        for event_id, payload, reason in entries:
            by_reason.setdefault(reason, []).append((event_id, payload))
        try:
            for reason, items in by_reason.items():
                await self._dead(
                    [("", event_id, payload, now) for event_id, payload in items],
                    Failure(reason, 0, None, None, now),
                )
        except RedisError as exc:
            raise StorageError(f"redis: could not store the dead letters: {exc}") from exc

    async def _dead(
        self,
        rows: Sequence[tuple[str, str, bytes, float]],
        failure: Failure,
        *,
        retry: bool = False,
    ) -> tuple[int, int]:
        """Run DEAD over ``rows``; returns the dead letters written and the stream bytes freed."""
        keys = [self.stream, self.bytes_key, self.dead]
        maxlen = self.link.config.dead_letters_max
        head = [
            self.group,
            "" if maxlen is None else str(maxlen),
            failure.reason,
            str(failure.attempts),
            "" if failure.status is None else str(failure.status),
            failure.response or "",
            repr(failure.at),
        ]
        moved = freed = 0
        for start in range(0, len(rows), CHUNK):
            args = list(head)
            for seq, event_id, payload, enqueued_at in rows[start : start + CHUNK]:
                args += [seq, event_id, payload, repr(enqueued_at)]
            call = (self._retrying if retry else self._call)(
                "dead_letter", lambda c, args=args: self.link.eval(c, DEAD, keys, args)
            )
            written, size = await call
            moved += int(written)
            freed += int(size)
        return moved, freed

    # -- reading -------------------------------------------------------------------

    async def get_batch(self, max_events: int, max_bytes: int, max_wait: float) -> list[Entry]:
        """The next batch: waits for a first entry, then up to ``max_wait`` to fill it.

        Returns ``[]`` once the queue is closed. Never raises for Redis errors:
        it waits for Redis to come back.
        """
        async with self._take_lock:
            batch: list[Entry] = []
            size = 0
            deadline = None
            while not self.closed:
                size = self._take(batch, size, max_events, max_bytes)
                if len(batch) >= max_events or self._buffer:
                    break  # full, by events or by bytes
                now = trio.current_time()
                if batch and deadline is None:
                    deadline = now + max_wait
                if deadline is not None and now >= deadline:
                    break
                count = self._read_count(max_events - len(batch), max_bytes - size)
                if deadline is None:
                    await self._fill(count, MAX_BLOCK)
                else:
                    # Filling: look again a few times within max_wait rather than at
                    # every new entry (a blocking read returns as soon as one arrives).
                    await trio.sleep(min(deadline - now, max_wait / FILL_LOOKS))
                    await self._fill(count, None)
            self.in_flight += len(batch)
            return batch

    def _read_count(self, count: int, budget: int) -> int:
        """Entries to read for ``count`` more events in about ``budget`` bytes (at least 1)."""
        average = self.pending_bytes // self.pending_events if self.pending_events > 0 else 0
        estimate = max(average, self._largest_read)
        if estimate <= 0:
            return count
        return max(1, min(count, budget // estimate))

    async def _fill(self, count: int, block: float | None) -> None:
        """Read up to ``count`` entries into the buffer, blocking up to ``block`` seconds."""
        try:
            await self._ensure_group()
            if not self._own_pending_done:
                entries = await self._own_pending(count)
            else:
                entries = await self._claim(count) if self._claim_due() else []
                if not entries:
                    entries = await self._read_new(count, block)
        except RedisUnavailable:
            with trio.move_on_after(MAX_BLOCK) as self._read_scope:
                await self.link.wait_until_retry()
            self._read_scope = None
            return
        except RedisError as exc:
            log.error(
                "redis.read_failed", sink=self.name, error=str(exc), error_type=type(exc).__name__
            )
            with trio.move_on_after(self._backoff.delay(3)) as self._read_scope:
                await trio.sleep_forever()
            self._read_scope = None
            return
        if entries:
            self._largest_read = max(len(entry.payload) for entry, _ in entries)
        replayed = 0
        opened_at = order(self._opened_at_id)
        for entry, was_replayed in entries:
            if entry.seq in self._held:
                continue
            self._held.add(entry.seq)
            self._buffer.append(entry)
            # Replays found in the stream at startup are counted as recovered already.
            if was_replayed and order(entry.seq) > opened_at:
                replayed += 1
        if replayed and self.on_replayed is not None:
            self.on_replayed(replayed)

    # -- finishing ----------------------------------------------------------------

    def _settle(self, entries: Sequence[Entry]) -> None:
        self.in_flight -= len(entries)
        for entry in entries:
            self._held.discard(entry.seq)

    async def ack(self, entries: Sequence[Entry]) -> None:
        """The entries were delivered: XACK + XDEL, retried until Redis answers.

        They stay held until then: while Redis is away they are still pending
        in the stream, and this queue's own claim of idle entries must not
        hand them out a second time.
        """
        try:
            for start in range(0, len(entries), CHUNK):
                chunk = entries[start : start + CHUNK]
                args = [
                    self.group,
                    " ".join(entry.seq for entry in chunk),
                    " ".join(str(len(entry.payload)) for entry in chunk),
                ]
                with changing_counts(self):
                    deleted, size = await self._retrying(
                        "ack",
                        lambda c, args=args: self.link.eval(
                            c, ACK, [self.stream, self.bytes_key], args
                        ),
                    )
                    self.pending_events = max(0, self.pending_events - int(deleted))
                    self.pending_bytes = max(0, self.pending_bytes - int(size))
        finally:  # cancelled (shutdown): not written, so pending, to be sent again
            self._settle(entries)

    async def _dead_letter(self, entries: Sequence[Entry], failure: Failure) -> int:
        """To the dead-letter stream, retried until stored. An entry no longer in the
        stream (another daemon claimed and finished it, or a retry after a lost reply)
        is not dead-lettered again, nor counted. Held until stored, as in :meth:`ack`.
        """
        try:
            with changing_counts(self):
                moved, freed = await self._dead(
                    [(e.seq, e.event_id, e.payload, e.enqueued_at) for e in entries],
                    failure,
                    retry=True,
                )
                self.pending_events = max(0, self.pending_events - moved)
                self.pending_bytes = max(0, self.pending_bytes - freed)
        finally:
            self._settle(entries)
        return moved

    def release(self, entries: Sequence[Entry]) -> None:
        """Put back entries taken but neither delivered nor dead-lettered (shutdown)."""
        self.in_flight -= len(entries)
        self._buffer.extendleft(reversed(entries))

    async def aclose(self) -> None:
        """Give back the entries read but not handed out, so other daemons take them at once.

        Best effort, within ``command_timeout``: what cannot be given back
        stays pending under this consumer (read again at its next start, or
        claimed by the others after ``claim_idle``).
        """
        self.close()
        ids = [e.seq for e in self._buffer]
        if not ids:
            return
        with trio.move_on_after(self.link.config.command_timeout):
            try:
                for start in range(0, len(ids), CHUNK):
                    args = [self.group, *ids[start : start + CHUNK]]
                    await self.link.call(
                        "requeue",
                        lambda c, args=args: self.link.eval(c, REQUEUE, [self.stream], args),
                    )
            except (RedisUnavailable, RedisError) as exc:
                log.warning("redis.requeue_failed", sink=self.name, error=str(exc))
                return
            log.info("redis.requeued", sink=self.name, events=len(ids))
            self._buffer.clear()
            self._held.difference_update(ids)
