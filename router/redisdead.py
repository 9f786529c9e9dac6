"""The dead letters of ``buffer: redis`` sinks, for ``router dlq``.

Each sink's dead letters are the stream ``{<prefix>:<sink>}:dead``, whose ids
are ``0-<n>``: ``n`` is the dead letter's number. :class:`RedisDeadLetters`
works on one sink over a connected link; :class:`SyncDeadLetters` is the
:class:`~router.queue.DeadLetterStore` the CLI calls, one ``trio.run`` per call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from router.queue import DeadLetter
from router.redisconn import CONNECTIVITY_ERRORS, RedisLink, RedisUnavailable, open_client
from router.redisscripts import CHUNK, REPLAY, text

if TYPE_CHECKING:
    from router.config import RouterConfig

__all__ = ["RedisDeadLetters", "SyncDeadLetters"]


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
            id=int(text(item.identifier).partition("-")[2]),
            sink=self.sink,
            event_id=text(f.get(b"e", b"")),
            payload=f.get(b"p", b""),
            reason=text(f.get(b"reason", b"")),
            attempts=int(f.get(b"attempts", 0)),
            status=int(status) if status else None,
            response=text(response) if response is not None else None,
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
            found += [text(item.identifier) for item in page]
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
