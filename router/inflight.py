"""Byte budgets: bound how many bytes many concurrent tasks hold at once.

Per-request and per-batch limits (``server.max_body_bytes``,
``batch.max_bytes``) do not bound memory on their own: N concurrent
requests or deliveries multiply them. A :class:`ByteBudget` is shared by
all of them and makes the total wait instead.

- **Ingest** (``server.max_inflight_bytes``): a request reserves its
  declared ``Content-Length`` (``server.max_body_bytes`` if it declares
  none) before its body is read, and keeps it until it is answered. A
  request that finds no room within ``ADMIT_WAIT`` seconds gets 503 with
  ``Retry-After: 1``; its body is read and thrown away chunk by chunk
  first, by the dispatcher's own body reader within the same limits
  (hypercorn stalls a connection whose body the app left unread once its
  receive queue is full, and the client would hang).
- **Delivery** (a sink's ``max_inflight_bytes``): a worker reserves
  ``batch.max_bytes`` before it takes a batch, then holds the batch's real
  size until the batch is settled.

One holder always fits, however large: a reservation larger than the
limit is clamped to it, so it waits for everyone else and then goes alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import trio

__all__ = ["ADMIT_RETRY_AFTER", "ADMIT_WAIT", "ByteBudget", "IngestAdmission"]

#: Longest an ingest request waits for room before it is answered 503.
ADMIT_WAIT = 2.0
#: Retry-After of that 503.
ADMIT_RETRY_AFTER = 1


class ByteBudget:
    """At most ``limit`` bytes held at once (clamped reservations; see the module doc)."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError("a byte budget needs a limit of at least 1 byte")
        self.limit = limit
        self.held = 0
        self.waiting = 0
        self._changed = trio.Event()

    def statistics(self) -> dict[str, int]:
        return {"limit": self.limit, "held": self.held, "waiting": self.waiting}

    def acquire_nowait(self, size: int) -> int:
        """Reserve ``size`` bytes (at most ``limit``); the amount reserved, for :meth:`release`.

        Raises ``trio.WouldBlock`` if they do not fit now.
        """
        size = min(max(size, 0), self.limit)
        if self.held and self.held + size > self.limit:
            raise trio.WouldBlock
        self.held += size
        return size

    async def acquire(self, size: int) -> int:
        """Reserve ``size`` bytes (at most ``limit``), waiting for room; the amount reserved."""
        await trio.lowlevel.checkpoint_if_cancelled()
        self.waiting += 1
        try:
            while True:
                try:
                    reserved = self.acquire_nowait(size)
                except trio.WouldBlock:
                    await self._changed.wait()
                else:
                    break
        finally:
            self.waiting -= 1
        await trio.lowlevel.cancel_shielded_checkpoint()
        return reserved

    def resize(self, reserved: int, size: int) -> int:
        """Hold ``size`` bytes instead of ``reserved`` ones; returns ``size``.

        Growing never waits: it is for bytes already in memory (an event
        larger than what was reserved for it), which makes others wait longer.
        """
        self.held += size - reserved
        if size < reserved:
            self._wake()
        return size

    def release(self, reserved: int) -> None:
        """Give back bytes from :meth:`acquire` or :meth:`resize`."""
        self.held -= reserved
        if reserved:
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


class IngestAdmission:
    """The ingest side: admit a request once its body fits ``server.max_inflight_bytes``."""

    def __init__(self, limit: int, max_body_bytes: int):
        self.budget = ByteBudget(limit)
        self.max_body_bytes = max_body_bytes

    def _size(self, headers: Iterable[tuple[bytes, bytes]]) -> int:
        for name, value in headers:
            if name.lower() == b"content-length":
                if value.isdigit():
                    # Larger than max_body_bytes is refused unread (413): nothing to reserve.
                    size = int(value)
                    return size if size <= self.max_body_bytes else 0
                break
        return self.max_body_bytes

    @asynccontextmanager
    async def admit(self, headers: Iterable[tuple[bytes, bytes]]) -> AsyncIterator[bool]:
        """Hold room for a request's body while the block runs; False if none came in time.

        :param headers: the ASGI scope's raw headers.
        """
        size = self._size(headers)
        try:
            reserved = self.budget.acquire_nowait(size)
        except trio.WouldBlock:
            reserved = 0
            with trio.move_on_after(ADMIT_WAIT) as waited:
                reserved = await self.budget.acquire(size)
            if waited.cancelled_caught:
                yield False
                return
        try:
            yield True
        finally:
            self.budget.release(reserved)
