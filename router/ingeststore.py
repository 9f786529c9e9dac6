"""Storing the events of one accepted ingest request, then counting them per sink.

Every write of a request runs at once (each sink's ``put``, the dead
letters of untranslatable events, the quarantine of invalid ones), so writes
to several sinks share one group commit; the per-sink counters move only for
what was stored. Called by :meth:`router.ingest.SourceRuntime.handle`.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Protocol

import structlog
import trio

from router.errors import FieldError, Overloaded, StorageError

if TYPE_CHECKING:
    from router.metrics import Metrics
    from router.quarantine import Quarantine
    from router.routing import SinkTarget

__all__ = ["FULL_RETRY_AFTER", "StoringSource", "store"]

log = structlog.get_logger()

#: Retry-After sent with 503 when a sink's spool is full.
FULL_RETRY_AFTER = 5
_PAYLOAD = itemgetter(1)


class StoringSource(Protocol):
    """What storing reads from the source the request came to."""

    name: str
    metrics: Metrics
    quarantine: Quarantine


async def store(
    source: StoringSource,
    puts: dict[SinkTarget, list[tuple[str, bytes]]],
    dead: dict[SinkTarget, list[tuple[str, bytes, str, str]]],
    failed: dict[int, list[FieldError]],
    raws: Sequence[Any],
    received: int,
) -> None:
    """Store every sink's events, then count them per sink.

    A per-sink counter moves only for what was stored: a refused request
    (a full spool with ``block``, a failed write) counts nothing it did not
    store, so the client's retry is not counted twice. When writes to
    several sinks are refused in part, what the others stored is counted.
    """
    dropped = _drop_or_refuse_full(source, puts, len(raws))
    stored, dead_stored, failures = await _write(source, puts, dead, failed, raws, received)
    for target, count in stored.items():
        source.metrics.sink_accepted.labels(target.name).inc(count)
        duplicates = len(puts[target]) - count
        if duplicates:
            source.metrics.sink_duplicates.labels(target.name).inc(duplicates)
    for target in dead_stored:
        source.metrics.sink_accepted.labels(target.name).inc(len(dead[target]))
        for *_, code in dead[target]:
            source.metrics.sink_dead.labels(target.name, code).inc()
    if failures:
        # The spool and the quarantine log once when writes start failing, not per request.
        unreported = [e for e in failures if not getattr(e, "reported", False)]
        (log.error if unreported else log.debug)(
            "ingest.store_failed",
            source=source.name,
            error=str((unreported or failures)[0]),
            stage="processing",
        )
        raise Overloaded(
            "could not store the events; retry later",
            headers={"Retry-After": str(FULL_RETRY_AFTER)},
        )
    for target, count in dropped.items():
        log.error(
            "events.dropped",
            sink=target.name,
            count=count,
            reason="spool_full",
            intentional=True,
        )
        source.metrics.sink_accepted.labels(target.name).inc(count)
        source.metrics.sink_dropped.labels(target.name, "spool_full").inc(count)


def _drop_or_refuse_full(
    source: StoringSource, puts: dict[SinkTarget, list[tuple[str, bytes]]], events: int
) -> dict[SinkTarget, int]:
    """Take the sinks whose queue is full out of ``puts``: how many events each drops.

    :raises Overloaded: a full sink has ``when_full: block``; nothing is stored.
    """
    dropped: dict[SinkTarget, int] = {}
    for target, entries in list(puts.items()):
        size = sum(map(len, map(_PAYLOAD, entries)))  # (event id, payload) pairs
        if target.queue.full(len(entries), size):
            if target.when_full == "block":
                source.metrics.events_rejected.labels(source.name, "overloaded").inc(events)
                raise Overloaded(
                    f"the spool of sink {target.name!r} is full; retry later",
                    headers={"Retry-After": str(FULL_RETRY_AFTER)},
                )
            dropped[target] = len(entries)
            del puts[target]
    return dropped


async def _write(
    source: StoringSource,
    puts: dict[SinkTarget, list[tuple[str, bytes]]],
    dead: dict[SinkTarget, list[tuple[str, bytes, str, str]]],
    failed: dict[int, list[FieldError]],
    raws: Sequence[Any],
    received: int,
) -> tuple[dict[SinkTarget, int], list[SinkTarget], list[BaseException]]:
    """Every write at once: what each sink stored, the sinks whose dead letters were
    stored, and the storage errors of the writes that failed."""
    now = time.time()
    failures: list[BaseException] = []
    stored: dict[SinkTarget, int] = {}
    dead_stored: list[SinkTarget] = []

    async def attempt(fn: Callable[..., Any], *args: Any, done: Callable[[Any], None]):
        try:
            result = await fn(*args)
        except (StorageError, OSError, sqlite3.Error) as exc:
            failures.append(exc)
        else:
            done(result)

    writes = [
        functools.partial(
            attempt,
            target.queue.put,
            entries,
            now,
            done=functools.partial(stored.__setitem__, target),
        )
        for target, entries in puts.items()
    ]
    writes += [
        functools.partial(
            attempt,
            target.queue.dead_letter_new,
            [(event_id, payload, reason) for event_id, payload, reason, _ in entries],
            now,
            done=lambda _, target=target: dead_stored.append(target),
        )
        for target, entries in dead.items()
    ]
    if failed:
        quarantined = [(raws[i], [str(e) for e in errors]) for i, errors in failed.items()]
        writes.append(
            functools.partial(
                attempt,
                source.quarantine.add,
                source.name,
                received,
                quarantined,
                done=lambda _: None,
            )
        )
    if len(writes) == 1:
        await writes[0]()  # the common case: no task to spawn
    elif writes:
        # Concurrently, so writes to several sinks share one group commit.
        async with trio.open_nursery() as nursery:
            for write in writes:
                nursery.start_soon(write)
    return stored, dead_stored, failures
