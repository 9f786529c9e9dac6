"""One sink's Redis Stream as this daemon's consumer sees it.

:class:`StreamConsumer` is the base of :class:`router.redisqueue.RedisQueue`:
the calls that recreate a lost consumer group and retry while Redis is down,
the shared counts and their refresh, the heartbeat over held entries, and the
three reads a batch is filled from (this consumer's own pending entries after a
restart, entries claimed from dead consumers, new entries). The queue itself
(put, batches, acks, dead letters) is in :mod:`router.redisqueue`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import structlog
import trio
from coredis.exceptions import (
    RedisError,
    StreamConsumerGroupError,
    StreamDuplicateConsumerGroupError,
)

from router.queue import Entry
from router.redisconn import RedisLink, RedisUnavailable
from router.redisscripts import CHUNK, HEAD, text
from router.retry import Backoff

__all__ = ["GROUP", "MAX_BLOCK", "MAX_STALE_REFRESHES", "StreamConsumer", "changing_counts"]

log = structlog.get_logger()

#: The consumer group every daemon reads a sink's stream in.
GROUP = "router"
#: Longest a single XREADGROUP blocks, so ``close()`` and claims are noticed.
MAX_BLOCK = 1.0
#: Refreshes of the shared counts skipped in a row (they overlapped a local
#: change) before one is applied anyway.
MAX_STALE_REFRESHES = 10


def order(stream_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair (``"10-0"`` comes after ``"9-5"``)."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _read_entry(seq: bytes, flat: list[bytes]) -> tuple[Entry, bool]:
    """An entry from XREADGROUP's raw reply, with whether ``dlq replay`` put it back."""
    # PUT, REPLAY and REQUEUE write e, p, t first (and r after them, for a replay):
    # read by position; anything else by name.
    if len(flat) >= 6 and flat[0] == b"e" and flat[2] == b"p" and flat[4] == b"t":
        entry = Entry(text(seq), text(flat[1]), flat[3], float(flat[5] or 0))
        return entry, b"r" in flat[6::2]
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    entry = Entry(
        text(seq),
        text(fields.get(b"e", b"")),
        fields.get(b"p", b""),
        float(fields.get(b"t", 0) or 0),
    )
    return entry, b"r" in fields


@contextlib.contextmanager
def changing_counts(queue: StreamConsumer) -> Iterator[None]:
    """Mark a local change of the counts in flight, then applied."""
    queue._count_changes_in_flight += 1
    try:
        yield
    finally:
        queue._count_changes_in_flight -= 1
        queue._count_version += 1


class StreamConsumer:
    """Redis calls on one sink's stream, group and counts; the state is set by the subclass."""

    link: RedisLink
    name: str
    group: str
    consumer: str
    claim_idle: float
    stream: str
    bytes_key: str
    pending_events: int
    pending_bytes: int
    recovered: int
    claimed: int
    _head_at: float | None
    closed: bool
    on_stored_unacknowledged: Callable[[int], None] | None
    _count_version: int
    _count_changes_in_flight: int
    _stale_refreshes: int
    _unconfirmed: list[str]
    _opened: bool
    _own_pending_done: bool
    _opened_at_id: str
    _held: set[str]
    _claim_cursor: str
    _next_claim: float
    _next_heartbeat: float
    _read_scope: trio.CancelScope | None
    _backoff: Backoff

    # -- calls, counts, heartbeat --------------------------------------------------

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
        with contextlib.suppress(RedisUnavailable, RedisError):  # the next upkeep reads it
            self._head_at = await self._call("open", self._read_head)

    async def _read_counts(self, client: Any) -> tuple[int, int, str]:
        async with client.pipeline(transaction=False) as pipe:
            pipe.xlen(self.stream)
            pipe.get(self.bytes_key)
            pipe.xrevrange(self.stream, count=1)
        length, size, last = pipe.results
        return int(length), int(size or 0), text(last[0].identifier) if last else "0-0"

    async def _read_head(self, client: Any) -> float | None:
        """The enqueue time of the stream's first entry (from its id if it has none), or None.

        The first entry is the next to deliver or in flight; one given back at
        shutdown or replayed goes to the end, with its own enqueue time.
        """
        head = await self.link.eval(client, HEAD, [self.stream], [])
        if not head:
            return None
        at = text(head[1])
        return float(at) if at else order(text(head[0]))[0] / 1000

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
            self._head_at = await self._call("refresh", self._read_head)
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

    # -- the three reads a batch is filled from ----------------------------------------

    @staticmethod
    def _entries(found: Sequence[Any]) -> list[tuple[Entry, bool]]:
        """Entries as read, each with whether ``dlq replay`` put it back."""
        out = []
        for item in found:
            fields = item.field_values
            if not fields:
                continue  # deleted meanwhile
            entry = Entry(
                text(item.identifier),
                text(fields.get(b"e", b"")),
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
            ids = [text(p.identifier) for p in pending if text(p.identifier) not in self._held]
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
        self._claim_cursor = text(cursor)
        if self._claim_cursor == "0-0":
            self._next_claim = trio.current_time() + max(0.05, self.claim_idle / 2)
        entries = [e for e in self._entries(found) if e[0].seq not in self._held]
        if entries:
            self.claimed += len(entries)
            log.warning("redis.claimed", sink=self.name, events=len(entries), idle_ms=idle_ms)
        return entries

    async def _read_new(self, count: int, block: float | None) -> list[tuple[Entry, bool]]:
        if self.closed:
            return []
        block_ms = None
        if block is not None:
            block_ms = max(1, round(min(block, self.claim_idle / 2, MAX_BLOCK) * 1000))
        found = None
        # close() cancels the read; entries Redis handed over meanwhile stay pending
        # under this consumer (read again at its next start, or claimed by others).
        with trio.CancelScope() as self._read_scope:
            # The reply raw: coredis's StreamEntry objects (an ordered dict of fields
            # each) were the largest per-event cost of delivering from Redis.
            found = await self._call(
                "read",
                lambda c: c.xreadgroup(
                    self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
                ).raw(),
            )
        self._read_scope = None
        if not found:
            return []
        return [_read_entry(seq, flat) for seq, flat in next(iter(found.values())) if flat]
