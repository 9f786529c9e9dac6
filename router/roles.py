"""``server.delivery: process``: which of the two processes does what.

With ``server.delivery: inline`` (the default) one process ingests and
delivers (role ``all``). With ``process``, the supervisor
(:mod:`router.workers`) runs two processes on one data directory:

- **ingest** serves every source and writes every event to its sinks'
  queues. It delivers the ``buffer: memory`` and ``buffer: redis`` sinks
  itself (their queues are in its memory, or shared through Redis already).
- **delivery** serves no source. It delivers the ``buffer: disk`` sinks from
  the spool the ingest process writes (SQLite in WAL mode: one database, two
  processes), finding new rows by polling the spool
  (:data:`router.spool.HANDOFF_INTERVAL`).

Each process reports what it owns, so the group's metrics and status add
up without double counting: the ingest process counts what the sources
received and every queue's ``recovered``, ``accepted`` and ``replayed``;
the process that delivers a sink counts its deliveries, retries and dead
letters and reports its queue (pending, oldest age, dead letters stored).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from router.config import RouterConfig, SinkConfig

__all__ = ["ROLES", "Role", "delivers", "delivery_config", "roles_of"]

Role = Literal["all", "ingest", "delivery"]
ROLES: tuple[Role, ...] = ("all", "ingest", "delivery")


def delivers(role: Role, sink: SinkConfig) -> bool:
    """Whether the process of ``role`` runs ``sink``'s delivery."""
    if role == "ingest":
        return sink.buffer != "disk"
    if role == "delivery":
        return sink.buffer == "disk"
    return True


def delivery_config(config: RouterConfig, running: RouterConfig | None = None) -> RouterConfig:
    """What the delivery process runs: the ``buffer: disk`` sinks; no source, no route.

    ``running``: the delivery process's config, when ``config`` is a reload's.
    A sink it runs stays, whatever ``buffer`` now says: a reload keeps every
    queue as it is (a new ``buffer`` takes effect on restart), and the ingest
    process keeps that queue's events on disk for this process until then.
    """
    kept = running.sinks if running is not None else {}
    sinks = {
        name: sink
        for name, sink in config.sinks.items()
        if name in kept or delivers("delivery", sink)
    }
    return dataclasses.replace(config, sources={}, routes=(), sinks=sinks)


def roles_of(config: RouterConfig) -> tuple[Role, ...]:
    """The processes ``config`` runs as, one role each (``server.workers`` of ``all``,
    or the pair)."""
    if config.server.delivery == "process":
        return ("ingest", "delivery")
    return ("all",) * config.server.workers
