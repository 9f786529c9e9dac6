"""A real spool for unit tests: opened on a temporary file, its writer running, closed after."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import trio

from router.spool import Spool


def options(**kw):
    """A sink's spool options: durable and unbounded unless ``kw`` says otherwise."""
    return {"durable": True, "max_events": 1_000_000, "max_bytes": 1 << 30, **kw}


async def take_all(queue, expected: int, batch: int = 7) -> list:
    """Take, and ack, batches until ``expected`` events came out."""
    out = []
    with trio.fail_after(10):
        while len(out) < expected:
            entries = await queue.get_batch(batch, 1 << 20, 0)
            out += entries
            await queue.ack(entries)
    return out


@contextlib.asynccontextmanager
async def running_spools(tmp_path) -> AsyncIterator[Callable[..., Awaitable[Spool]]]:
    """``start(sinks, path, role)`` opens a spool and runs its writer; every one is closed after.

    Two spools on one ``path`` with roles ``ingest`` and ``delivery`` are the
    two processes of ``server.delivery: process`` (their tasks share one Trio
    loop here, their databases nothing but the file)."""
    spools = []

    async def open_spool(sinks=(("a", options()),), path=None, role="all"):
        spool = Spool(path or tmp_path / "spool.db", role=role)
        await spool.open(list(sinks))
        spools.append(spool)
        return spool

    async with trio.open_nursery() as nursery:

        async def start(sinks=(("a", options()),), path=None, role="all"):
            spool = await open_spool(sinks, path, role)
            await nursery.start(spool.run)
            return spool

        yield start
        for spool in spools:
            await spool.close()
            spool.close_db()
        nursery.cancel_scope.cancel()
