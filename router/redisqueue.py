"""``buffer: redis``: a sink's queue in a Redis Stream shared by every daemon.

A :class:`~router.queue.SinkQueue` (what ingest and a
:class:`~router.delivery.SinkRunner` use), on one stream per sink with one
consumer group; each daemon reads as its own consumer.

- **put** runs one Lua script per batch: XADD of every event (after ``SET
  NX PX`` of its id for sinks with ``dedup``) and the stream's byte count, in
  one atomic round trip. It returns only once Redis answered; any error raises
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
  would need the group's state to know how far it may go.
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
this daemon's own puts and acks); ``in_flight`` is this daemon's; the
metrics (accepted, delivered, dead-lettered) count what this daemon did.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog
import trio
from coredis.exceptions import (
    RedisError,
    StreamConsumerGroupError,
    StreamDuplicateConsumerGroupError,
)

from router.config.settings import SpoolConfig
from router.queue import DeadLetter, Entry, QueueBounds, StorageError
from router.redisconn import CONNECTIVITY_ERRORS, RedisLink, RedisUnavailable, open_client
from router.retry import Backoff

if TYPE_CHECKING:
    from router.config import RouterConfig

__all__ = ["GROUP", "RedisDeadLetters", "RedisQueue", "SyncDeadLetters"]

log = structlog.get_logger()

#: The consumer group every daemon reads a sink's stream in.
GROUP = "router"
#: Longest a single XREADGROUP blocks, so ``close()`` and claims are noticed.
MAX_BLOCK = 1.0
#: How many times a batch that is not full looks for more entries within ``max_wait``.
FILL_LOOKS = 4
#: Entries per script call or command when acknowledging, claiming or replaying.
CHUNK = 500

# KEYS: stream, bytes, dedup key per event (only with a window)
# ARGV: window ms ('' for none), enqueued_at, then event_id, payload per event
PUT = """
local window = tonumber(ARGV[1])
local stored, size = 0, 0
for i = 3, #ARGV, 2 do
  local n = (i - 1) / 2
  if not window or redis.call('SET', KEYS[3 + n], '1', 'NX', 'PX', window) then
    redis.call('XADD', KEYS[1], '*', 'e', ARGV[i], 'p', ARGV[i + 1], 't', ARGV[2])
    stored = stored + 1
    size = size + #ARGV[i + 1]
  end
end
if size > 0 then redis.call('INCRBY', KEYS[2], size) end
redis.call('SET', KEYS[3], stored, 'PX', 3600000)
return {stored, size}
"""

# KEYS: stream, bytes. ARGV: group, then id, payload size per entry.
ACK = """
local deleted, size = 0, 0
for i = 2, #ARGV, 2 do
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  if redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then
    deleted = deleted + 1
    size = size + tonumber(ARGV[i + 1])
  end
end
if size > 0 then redis.call('DECRBY', KEYS[2], size) end
return {deleted, size}
"""

# KEYS: stream, bytes, dead. ARGV: group, max dead letters ('' for no bound), reason,
# attempts, status, response, dead_at, then id ('' if never queued), event_id, payload,
# enqueued_at per entry. A queued entry is dead-lettered only if it is still in the
# stream: at most once, even when the script is run again after a lost reply or
# another daemon claimed the entry and finished it first.
DEAD = """
local maxlen = ARGV[2]
local moved, size = 0, 0
for i = 8, #ARGV, 4 do
  local queued = ARGV[i] ~= ''
  local present = true
  if queued then
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
    present = redis.call('XDEL', KEYS[1], ARGV[i]) == 1
    if present then size = size + #ARGV[i + 2] end
  end
  if present then
    local fields = {'e', ARGV[i + 1], 'p', ARGV[i + 2], 't', ARGV[i + 3], 'd', ARGV[7],
                    'reason', ARGV[3], 'attempts', ARGV[4]}
    if ARGV[5] ~= '' then table.insert(fields, 'status'); table.insert(fields, ARGV[5]) end
    if ARGV[6] ~= '' then table.insert(fields, 'response'); table.insert(fields, ARGV[6]) end
    if maxlen ~= '' then
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '0-*', unpack(fields))
    else
      redis.call('XADD', KEYS[3], '0-*', unpack(fields))
    end
    moved = moved + 1
  end
end
if size > 0 then redis.call('DECRBY', KEYS[2], size) end
return {moved, size}
"""

# KEYS: stream. ARGV: group, then ids: copy each entry to the stream's end and drop the
# original, so any consumer may take it at once (a daemon stopping gives back what it held).
# The copy drops the replay mark 'r': the daemon that read it has counted the replay.
REQUEUE = """
local moved = 0
for i = 2, #ARGV do
  local found = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #found > 0 then
    local flat, fields = found[1][2], {}
    for j = 1, #flat, 2 do
      if flat[j] ~= 'r' then
        table.insert(fields, flat[j]); table.insert(fields, flat[j + 1])
      end
    end
    redis.call('XADD', KEYS[1], '*', unpack(fields))
    moved = moved + 1
  end
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
end
return moved
"""

# KEYS: stream, bytes, dead. ARGV: dead letter ids: back into the stream, marked replayed.
REPLAY = """
local moved, size = 0, 0
for i = 1, #ARGV do
  local found = redis.call('XRANGE', KEYS[3], ARGV[i], ARGV[i])
  if #found > 0 then
    local f = {}
    local flat = found[1][2]
    for j = 1, #flat, 2 do f[flat[j]] = flat[j + 1] end
    redis.call('XADD', KEYS[1], '*', 'e', f['e'], 'p', f['p'], 't', f['t'], 'r', '1')
    redis.call('XDEL', KEYS[3], ARGV[i])
    moved = moved + 1
    size = size + #f['p']
  end
end
if size > 0 then redis.call('INCRBY', KEYS[2], size) end
return moved
"""


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _order(stream_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair (``"10-0"`` comes after ``"9-5"``)."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


#: Refreshes of the shared counts skipped in a row (they overlapped a local
#: change) before one is applied anyway.
MAX_STALE_REFRESHES = 10


@contextlib.contextmanager
def _changing_counts(queue: RedisQueue):
    """Mark a local change of the counts in flight, then applied."""
    queue._count_changes_in_flight += 1
    try:
        yield
    finally:
        queue._count_changes_in_flight -= 1
        queue._count_version += 1


class RedisQueue(QueueBounds):
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

    def statistics(self) -> dict[str, Any]:
        """The keys of :data:`router.queue.STATISTICS`, ``claimed`` and ``redis_up``."""
        return {
            "pending_events": self.pending_events,
            "pending_bytes": self.pending_bytes,
            "in_flight": self.in_flight,
            "in_memory": len(self._buffer),
            "spilled": False,
            "claimed": self.claimed,
            "redis_up": self.link.up,
        }

    def close(self) -> None:
        """No more batches (shutdown); what this daemon holds is given back by :meth:`aclose`."""
        self.closed = True
        if self._read_scope is not None:
            self._read_scope.cancel()

    # -- Redis calls ---------------------------------------------------------------

    async def _call(self, operation: str, fn: Callable[[Any], Any]) -> Any:
        """One call; a missing group (Redis lost its data) is created and the call retried."""
        try:
            return await self.link.call(operation, fn)
        except StreamConsumerGroupError as exc:
            if isinstance(exc, StreamDuplicateConsumerGroupError):
                raise
            self._opened = False
            await self._ensure_group()
            return await self.link.call(operation, fn)

    async def _ensure_group(self) -> None:
        if self._opened:
            return
        # From "0", never "$": a group created after a data loss must not skip entries.
        with contextlib.suppress(StreamDuplicateConsumerGroupError):  # exists already
            await self.link.call(
                "xgroup_create",
                lambda c: c.xgroup_create(self.stream, self.group, "0", mkstream=True),
            )
        self._opened = True

    async def _retrying(self, operation: str, fn: Callable[[Any], Any]) -> Any:
        """Call until it succeeds, sleeping with backoff and jitter in between.

        Only cancellation (the shutdown deadline) stops it; an unexpected
        Redis error is logged and retried too, so it never stops a runner.
        """
        attempt = 0
        while True:
            try:
                await self._ensure_group()
                return await self._call(operation, fn)
            except RedisUnavailable:
                await self.link.wait_until_retry()
                continue
            except RedisError as exc:
                attempt += 1
                log.error(
                    "redis.command_failed",
                    sink=self.name,
                    operation=operation,
                    error=str(exc),
                    error_type=type(exc).__name__,
                )
            await trio.sleep(self._backoff.delay(attempt))

    async def open(self) -> None:
        """Create the group if needed; count what the stream holds (``recovered``)."""
        try:
            await self._ensure_group()
            length, size, last = await self._call("open", self._read_counts)
        except (RedisUnavailable, RedisError) as exc:
            log.warning("redis.queue_open_failed", sink=self.name, error=str(exc))
            return
        self._set_counts(length, size)
        self.recovered = length
        self._opened_at_id = last

    async def _read_counts(self, client: Any) -> tuple[int, int, str]:
        async with client.pipeline(transaction=False) as pipe:
            pipe.xlen(self.stream)
            pipe.get(self.bytes_key)
            pipe.xrevrange(self.stream, count=1)
        length, size, last = pipe.results
        return int(length), int(size or 0), _str(last[0].identifier) if last else "0-0"

    def _set_counts(self, length: int, size: int) -> None:
        self.pending_events = length
        self.pending_bytes = max(0, size)

    async def upkeep(self) -> None:
        """Refresh the shared counts; reset the idle time of held entries (heartbeat)."""
        try:
            await self._ensure_group()
            version, busy = self._count_version, self._count_changes_in_flight
            length, size, _ = await self._call("refresh", self._read_counts)
            overlapped = busy or self._count_changes_in_flight or version != self._count_version
            # Under sustained local traffic apply it anyway now and then, so other
            # daemons' work shows up (a transient error of one overlap at most).
            if not overlapped or self._stale_refreshes >= MAX_STALE_REFRESHES:
                self._set_counts(length, size)
                self._stale_refreshes = 0
            else:
                self._stale_refreshes += 1
            if self._unconfirmed:
                await self._resolve_unconfirmed()
            now = trio.current_time()
            if self._held and now >= self._next_heartbeat:
                await self._heartbeat()
                self._next_heartbeat = now + self.claim_idle / 3
        except RedisUnavailable:
            pass  # logged once by the link
        except RedisError as exc:
            log.warning("redis.upkeep_failed", sink=self.name, error=str(exc))

    async def _resolve_unconfirmed(self) -> None:
        """Count the events of puts that were stored although their reply was lost."""
        tokens, self._unconfirmed = self._unconfirmed, []
        keys = [self.link.key(self.name, "put", token) for token in tokens]
        try:
            values = await self._call("confirm", lambda c: c.mget(keys))
        except BaseException:
            self._unconfirmed = tokens + self._unconfirmed
            raise
        stored = sum(int(value) for value in values if value is not None)
        if stored:
            log.warning("redis.stored_unacknowledged", sink=self.name, events=stored)
            if self.on_stored_unacknowledged is not None:
                self.on_stored_unacknowledged(stored)

    async def _heartbeat(self) -> None:
        held = list(self._held)
        for start in range(0, len(held), CHUNK):
            chunk = held[start : start + CHUNK]
            await self._call(
                "heartbeat",
                lambda c, chunk=chunk: c.xclaim(
                    self.stream, self.group, self.consumer, 0, chunk, justid=True
                ),
            )

    # -- writing -------------------------------------------------------------------

    async def put(self, entries: Sequence[tuple[str, bytes]], now: float) -> int:
        """Store events in the stream; returns how many (fewer if ``dedup`` skipped some).

        :raises StorageError: Redis did not store them (nothing was, or the
            outcome is unknown: the client is told to retry).
        """
        if not entries:
            return 0
        # The script also records how many it stored under a token, so a put whose
        # reply is lost (Redis died mid-call) can be resolved later: see upkeep().
        token = uuid.uuid4().hex
        keys = [self.stream, self.bytes_key, self.link.key(self.name, "put", token)]
        window = ""
        if self.dedup_window is not None:
            window = str(max(1, round(self.dedup_window * 1000)))
            keys += [self.link.key(self.name, "dedup", event_id) for event_id, _ in entries]
        args: list[Any] = [window, repr(now)]
        for event_id, payload in entries:
            args += [event_id, payload]
        with _changing_counts(self):
            try:
                await self._ensure_group()
                stored, size = await self._call("put", lambda c: self.link.eval(c, PUT, keys, args))
            except RedisUnavailable as exc:
                if exc.__cause__ is not None:
                    # Sent, and the reply was lost: it may have been stored.
                    self._unconfirmed.append(token)
                raise
            except RedisError as exc:
                raise StorageError(f"redis: could not store the events: {exc}") from exc
            self.pending_events += int(stored)
            self.pending_bytes += int(size)
        return int(stored)

    async def dead_letter_new(self, entries: Sequence[tuple[str, bytes, str]], now: float) -> None:
        """Dead-letter events that never entered the queue (untranslatable at ingest)."""
        by_reason: dict[str, list[tuple[str, bytes]]] = {}
        for event_id, payload, reason in entries:
            by_reason.setdefault(reason, []).append((event_id, payload))
        try:
            for reason, items in by_reason.items():
                await self._dead(
                    [("", event_id, payload, now) for event_id, payload in items],
                    reason=reason,
                    attempts=0,
                    status=None,
                    response=None,
                    now=now,
                )
        except RedisError as exc:
            raise StorageError(f"redis: could not store the dead letters: {exc}") from exc

    async def _dead(
        self,
        rows: Sequence[tuple[str, str, bytes, float]],
        *,
        reason: str,
        attempts: int,
        status: int | None,
        response: str | None,
        now: float,
        retry: bool = False,
    ) -> tuple[int, int]:
        """Run DEAD over ``rows``; returns the dead letters written and the stream bytes freed."""
        keys = [self.stream, self.bytes_key, self.dead]
        maxlen = self.link.config.dead_letters_max
        head = [
            self.group,
            "" if maxlen is None else str(maxlen),
            reason,
            str(attempts),
            "" if status is None else str(status),
            response or "",
            repr(now),
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
                while self._buffer and len(batch) < max_events:
                    payload = self._buffer[0].payload
                    if batch and size + len(payload) > max_bytes:
                        max_events = len(batch)  # full by size: send what we have
                        break
                    batch.append(self._buffer.popleft())
                    size += len(payload)
                if len(batch) >= max_events:
                    break
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
        opened_at = _order(self._opened_at_id)
        for entry, was_replayed in entries:
            if entry.seq in self._held:
                continue
            self._held.add(entry.seq)
            self._buffer.append(entry)
            # Replays found in the stream at startup are counted as recovered already.
            if was_replayed and _order(entry.seq) > opened_at:
                replayed += 1
        if replayed and self.on_replayed is not None:
            self.on_replayed(replayed)

    @staticmethod
    def _entries(found: Sequence[Any]) -> list[tuple[Entry, bool]]:
        """Entries as read, each with whether ``dlq replay`` put it back."""
        out = []
        for item in found:
            fields = item.field_values
            if not fields:
                continue  # deleted meanwhile
            entry = Entry(
                _str(item.identifier),
                _str(fields.get(b"e", b"")),
                fields.get(b"p", b""),
                float(fields.get(b"t", 0) or 0),
            )
            out.append((entry, b"r" in fields))
        return out

    async def _own_pending(self, count: int) -> list[tuple[Entry, bool]]:
        """Entries this consumer took before a restart (same consumer name), oldest first."""

        async def read(client: Any) -> list[tuple[Entry, bool]]:
            pending = await client.xpending(
                self.stream, self.group, "-", "+", count, consumer=self.consumer
            )
            ids = [_str(p.identifier) for p in pending if _str(p.identifier) not in self._held]
            if not ids:
                return []
            return self._entries(
                await client.xclaim(self.stream, self.group, self.consumer, 0, ids)
            )

        found = await self._call("recover", read)
        if not found:
            self._own_pending_done = True
        else:
            log.info("redis.resumed", sink=self.name, events=len(found), consumer=self.consumer)
        return found

    def _claim_due(self) -> bool:
        return trio.current_time() >= self._next_claim

    async def _claim(self, count: int) -> list[tuple[Entry, bool]]:
        """Entries other consumers left idle for ``claim_idle`` (dead or cut-off daemons)."""
        idle_ms = max(1, round(self.claim_idle * 1000))
        cursor, found, _deleted = await self._call(
            "claim",
            lambda c: c.xautoclaim(
                self.stream, self.group, self.consumer, idle_ms, self._claim_cursor, count=count
            ),
        )
        self._claim_cursor = _str(cursor)
        if self._claim_cursor == "0-0":
            self._next_claim = trio.current_time() + max(0.05, self.claim_idle / 2)
        entries = [e for e in self._entries(found) if e[0].seq not in self._held]
        if entries:
            self.claimed += len(entries)
            log.warning("redis.claimed", sink=self.name, events=len(entries), idle_ms=idle_ms)
        return entries

    async def _read_new(self, count: int, block: float | None) -> list[tuple[Entry, bool]]:
        block_ms = None
        if block is not None:
            block_ms = max(1, round(min(block, self.claim_idle / 2, MAX_BLOCK) * 1000))
        if self.closed:
            return []
        found = None
        # close() cancels the read; entries Redis handed over meanwhile stay pending
        # under this consumer (read again at its next start, or claimed by others).
        with trio.CancelScope() as self._read_scope:
            found = await self._call(
                "read",
                lambda c: c.xreadgroup(
                    self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
                ),
            )
        self._read_scope = None
        if not found:
            return []
        return self._entries(next(iter(found.values())))

    # -- finishing ----------------------------------------------------------------

    def _settle(self, entries: Sequence[Entry]) -> None:
        self.in_flight -= len(entries)
        for entry in entries:
            self._held.discard(entry.seq)

    async def ack(self, entries: Sequence[Entry]) -> None:
        """The entries were delivered: XACK + XDEL, retried until Redis answers."""
        self._settle(entries)
        for start in range(0, len(entries), CHUNK):
            chunk = entries[start : start + CHUNK]
            args: list[Any] = [self.group]
            for entry in chunk:
                args += [entry.seq, len(entry.payload)]
            with _changing_counts(self):
                deleted, size = await self._retrying(
                    "ack",
                    lambda c, args=args: self.link.eval(
                        c, ACK, [self.stream, self.bytes_key], args
                    ),
                )
                self.pending_events = max(0, self.pending_events - int(deleted))
                self.pending_bytes = max(0, self.pending_bytes - int(size))

    async def dead_letter(
        self,
        entries: Sequence[Entry],
        *,
        reason: str,
        attempts: int,
        status: int | None = None,
        response: str | None = None,
    ) -> int:
        """Move entries to the dead-letter stream with why they failed (retried until stored).

        Returns how many were moved: an entry no longer in the stream (another
        daemon claimed and finished it, or a retry after a lost reply) is not
        dead-lettered again.
        """
        self._settle(entries)
        with _changing_counts(self):
            moved, freed = await self._dead(
                [(e.seq, e.event_id, e.payload, e.enqueued_at) for e in entries],
                reason=reason,
                attempts=attempts,
                status=status,
                response=response,
                now=time.time(),
                retry=True,
            )
            self.pending_events = max(0, self.pending_events - moved)
            self.pending_bytes = max(0, self.pending_bytes - freed)
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


class RedisDeadLetters:
    """The dead-letter stream of one ``buffer: redis`` sink, for ``router dlq``.

    Dead letter ids are the ``n`` of the stream ids ``0-<n>``.
    """

    def __init__(self, link: RedisLink, sink: str):
        self.link = link
        self.sink = sink
        self.stream = link.key(sink, "stream")
        self.bytes_key = link.key(sink, "bytes")
        self.dead = link.key(sink, "dead")

    async def count(self) -> int:
        return int(await self.link.call("dlq", lambda c: c.xlen(self.dead)))

    def _letter(self, item: Any) -> DeadLetter:
        f = item.field_values
        status = f.get(b"status")
        response = f.get(b"response")
        return DeadLetter(
            id=int(_str(item.identifier).partition("-")[2]),
            sink=self.sink,
            event_id=_str(f.get(b"e", b"")),
            payload=f.get(b"p", b""),
            reason=_str(f.get(b"reason", b"")),
            attempts=int(f.get(b"attempts", 0)),
            status=int(status) if status else None,
            response=_str(response) if response is not None else None,
            enqueued_at=float(f.get(b"t", 0)),
            dead_at=float(f.get(b"d", 0)),
        )

    async def list(self, *, offset: int = 0, limit: int = 100) -> list[DeadLetter]:
        found = await self.link.call(
            "dlq", lambda c: c.xrange(self.dead, "-", "+", count=offset + limit)
        )
        return [self._letter(item) for item in found[offset:]]

    async def get(self, letter_id: int) -> DeadLetter | None:
        sid = f"0-{letter_id}"
        found = await self.link.call("dlq", lambda c: c.xrange(self.dead, sid, sid))
        return self._letter(found[0]) if found else None

    async def _selected(self, ids: Sequence[int] | None) -> list[str]:
        found = []
        start = "-"
        while True:
            page = await self.link.call(
                "dlq", lambda c, start=start: c.xrange(self.dead, start, "+", count=CHUNK)
            )
            found += [_str(item.identifier) for item in page]
            if len(page) < CHUNK:
                break
            start = "(" + found[-1]
        if ids is None:
            return found
        wanted = {f"0-{i}" for i in ids}
        return [sid for sid in found if sid in wanted]

    async def replay(
        self,
        ids: Sequence[int] | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Move dead letters (all, or ``ids``) back into the sink's stream; returns how many."""
        wanted = await self._selected(ids)
        done = 0
        keys = [self.stream, self.bytes_key, self.dead]
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            done += int(
                await self.link.call(
                    "dlq", lambda c, chunk=chunk: self.link.eval(c, REPLAY, keys, chunk)
                )
            )
            if progress is not None:
                progress(done, len(wanted))
        return done

    async def purge(self, ids: Sequence[int] | None = None) -> int:
        """Delete dead letters (all, or ``ids``); returns how many."""
        wanted = await self._selected(ids)
        done = 0
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            done += int(
                await self.link.call("dlq", lambda c, chunk=chunk: c.xdel(self.dead, chunk))
            )
        return done


class SyncDeadLetters:
    """The dead letters of every ``buffer: redis`` sink, for ``router dlq``.

    A :class:`~router.queue.DeadLetterStore`, like the spool's
    :class:`~router.deadletters.DeadLetters`. Each call connects, runs
    :class:`RedisDeadLetters` of its ``sink`` in its own ``trio.run`` and
    disconnects.

    :raises StorageError: (as RedisUnavailable) if Redis cannot be reached.
    """

    def __init__(self, config: RouterConfig):
        self.config = config.redis

    def _run(self, sink: str, fn: Callable[[RedisDeadLetters], Awaitable[Any]]) -> Any:
        async def call() -> Any:
            link = RedisLink(self.config, consumer="router-cli")
            try:
                async with open_client(self.config) as client:
                    link.client = client
                    return await fn(RedisDeadLetters(link, sink))
            except CONNECTIVITY_ERRORS as exc:  # entering a Cluster or Sentinel client
                raise RedisUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc

        return trio.run(call)

    def count(self, sink: str) -> int:
        return self._run(sink, lambda d: d.count())

    def list(self, sink: str, *, offset: int = 0, limit: int = 100) -> list[DeadLetter]:
        return self._run(sink, lambda d: d.list(offset=offset, limit=limit))

    def get(self, sink: str, letter_id: int) -> DeadLetter | None:
        return self._run(sink, lambda d: d.get(letter_id))

    def replay(
        self,
        sink: str,
        ids: Sequence[int] | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        return self._run(sink, lambda d: d.replay(ids, progress=progress))

    def purge(self, sink: str, ids: Sequence[int] | None = None) -> int:
        return self._run(sink, lambda d: d.purge(ids))
