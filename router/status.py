"""What is flowing now: one JSON snapshot of sources, sinks, routes and limits.

``router top``, the status page and ``/admin/status`` all read
:func:`snapshot`. Counts come from the daemon's own metrics, so the numbers
there and in ``/metrics`` are the same numbers; rates and p99 latencies come
from :class:`Rates`, which samples those counters once a second and keeps
the last :data:`WINDOW` seconds. Several workers' snapshots add up with
:func:`merge`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import trio

from router import __version__

if TYPE_CHECKING:
    from router.metrics import Metrics
    from router.reload import ReloadHistory
    from router.topology import Topology

__all__ = ["WINDOW", "Rates", "StatusHost", "merge", "snapshot"]

#: Seconds of samples rates and p99 latencies are computed over.
WINDOW = 10.0
#: How often :class:`Rates` samples the counters.
SAMPLE_EVERY = 1.0
#: Reload history entries a snapshot carries.
RELOADS_SHOWN = 10

# (metric sample name, the label that names the part) -> snapshot field
_SOURCE_COUNTERS = {
    "router_requests_total": "requests",
    "router_events_received_total": "events_received",
    "router_events_accepted_total": "events_accepted",
    "router_events_rejected_total": "events_rejected",
}
_SINK_COUNTERS = {
    "router_sink_events_delivered_total": "delivered",
    "router_sink_events_retried_total": "retried",
    "router_sink_events_dead_lettered_total": "dead_lettered",
}
_LATENCY = "router_request_duration_seconds_bucket"


class StatusHost(Protocol):
    """What a snapshot reads from the process (:class:`router.daemon.Daemon`)."""

    metrics: Metrics
    reloads: ReloadHistory
    started_at: float
    worker: int | None

    @property
    def topology(self) -> Topology | None: ...

    def readiness(self) -> tuple[bool, dict[str, Any]]: ...


Counts = dict[tuple[str, str], float]
Buckets = dict[tuple[str, float], float]


def _totals(metrics: Metrics) -> tuple[Counts, Buckets]:
    """Counter totals per (field, part) and latency bucket counts per (source, le)."""
    counters: dict[tuple[str, str], float] = {}
    buckets: dict[tuple[str, float], float] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            name, labels = sample.name, sample.labels
            if name in _SOURCE_COUNTERS:
                key = (_SOURCE_COUNTERS[name], labels.get("source", ""))
            elif name in _SINK_COUNTERS:
                key = (_SINK_COUNTERS[name], labels.get("sink", ""))
            elif name == _LATENCY:
                le = float(labels["le"])
                bucket = (labels.get("source", ""), le)
                buckets[bucket] = buckets.get(bucket, 0.0) + sample.value
                continue
            else:
                continue
            counters[key] = counters.get(key, 0.0) + sample.value
            if name == "router_events_rejected_total" and labels.get("reason") == "rate_limited":
                # What the inbound limiter refuses now: its state, as router top shows it.
                limited = ("events_limited", key[1])
                counters[limited] = counters.get(limited, 0.0) + sample.value
    return counters, buckets


class Rates:
    """Per-second rates and p99 latencies over the last :data:`WINDOW` seconds."""

    def __init__(self, metrics: Metrics, window: float = WINDOW):
        self.metrics = metrics
        self.window = window
        self._samples: deque[tuple[float, dict, dict]] = deque()

    def sample(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        counters, buckets = _totals(self.metrics)
        self._samples.append((now, counters, buckets))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()

    async def run(self) -> None:
        """Sample every :data:`SAMPLE_EVERY` seconds, forever."""
        while True:
            self.sample()
            await trio.sleep(SAMPLE_EVERY)

    def _ends(self) -> tuple[tuple[float, dict, dict], tuple[float, dict, dict]] | None:
        if len(self._samples) < 2:
            return None
        return self._samples[0], self._samples[-1]

    def rate(self, field: str, part: str) -> float:
        """``field`` of ``part`` per second over the window (0 before two samples)."""
        ends = self._ends()
        if ends is None:
            return 0.0
        (t0, first, _), (t1, last, _) = ends
        delta = last.get((field, part), 0.0) - first.get((field, part), 0.0)
        return max(0.0, delta) / (t1 - t0) if t1 > t0 else 0.0

    def p99(self, source: str) -> float | None:
        """The 99th percentile request time of ``source`` over the window: a bucket bound."""
        ends = self._ends()
        if ends is None:
            return None
        (_, _, first), (_, _, last) = ends
        bounds = sorted(le for (name, le) in last if name == source)
        counts = [last.get((source, le), 0.0) - first.get((source, le), 0.0) for le in bounds]
        if not counts or counts[-1] <= 0:
            return None
        wanted = 0.99 * counts[-1]
        for le, count in zip(bounds, counts, strict=True):
            if count >= wanted:
                return None if math.isinf(le) else le
        return None


def snapshot(
    host: StatusHost, rates: Rates, stored: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The whole status of one process as plain JSON data.

    ``stored`` is what the stores hold (``Daemon.stored_counts``): each sink's
    ``dead_letters_stored`` and the top-level ``quarantined``; None without it.
    """
    counters, _ = _totals(host.metrics)
    ready, detail = host.readiness()
    topology = host.topology
    sources: dict[str, Any] = {}
    sinks: dict[str, Any] = {}
    routes: list[dict[str, Any]] = []
    dead_stored = (stored or {}).get("dead_letters") or {}
    if topology is not None:
        for name, runtime in topology.sources.items():
            limit = runtime.config.rate_limit
            sources[name] = {
                "plugin": runtime.config.plugin,
                **{field: counters.get((field, name), 0.0) for field in _SOURCE_COUNTERS.values()},
                "requests_per_s": rates.rate("requests", name),
                "events_per_s": rates.rate("events_accepted", name),
                "rejects_per_s": rates.rate("events_rejected", name),
                "limited_per_s": rates.rate("events_limited", name),
                "p99_seconds": rates.p99(name),
                "rate_limit": None
                if limit is None
                else {
                    "rate": limit.rate,
                    "burst": limit.burst,
                    "key": limit.key,
                    "unit": limit.unit,
                    "backend": limit.backend,
                },
            }
        now = time.time()
        for name, node in topology.sinks.items():
            if not node.delivered:  # the delivering process reports it (router.roles)
                continue
            stats = node.runner.statistics()
            readiness = detail.get("sinks", {}).get(name, {})
            limit = node.config.rate_limit
            paused = float(stats.get("paused_for") or 0.0)
            sinks[name] = {
                "plugin": node.config.plugin,
                "buffer": node.config.buffer,
                **{field: counters.get((field, name), 0.0) for field in _SINK_COUNTERS.values()},
                "delivered_per_s": rates.rate("delivered", name),
                "pending": stats.get("pending_events", 0),
                "in_flight": stats.get("in_flight", 0),
                "pending_bytes": stats.get("pending_bytes", 0),
                "oldest_age_seconds": stats.get("oldest_age"),
                "concurrency": stats.get("concurrency"),
                "paused_until": now + paused if paused > 0 else None,
                "failing_for": readiness.get("failing_for", 0.0),
                "last_error": readiness.get("last_error"),
                "dead_letters_stored": dead_stored.get(name),
                "rate_limit": None
                if limit is None
                else {
                    "requests_per_second": limit.requests_per_second,
                    "events_per_second": limit.events_per_second,
                    "backend": limit.backend,
                },
            }
        for route in topology.config.routes:
            routes.append(
                {
                    "from": list(route.sources),
                    "to": list(route.sinks),
                    "types": sorted(route.types) if route.types is not None else None,
                    "match": dict(route.match) or None,
                }
            )
    return {
        "version": __version__,
        "time": time.time(),
        "uptime_seconds": round(time.time() - host.started_at, 3),
        "workers": [host.worker] if host.worker is not None else [0],
        "status": detail.get("status", "ready" if ready else "starting"),
        "ready": ready,
        "sources": sources,
        "sinks": sinks,
        "routes": routes,
        "orphaned": dict(detail.get("orphaned_sinks", {})),
        "storage_errors": list(detail.get("storage_errors", [])),
        "reloads": [r.to_dict() for r in list(host.reloads)[-RELOADS_SHOWN:]],
        "quarantined": (stored or {}).get("quarantined"),
    }


#: Worst first: the status several workers report together.
_STATUS_ORDER = ("storage_failing", "starting", "stopping", "degraded", "ready")
#: Fields of a source or sink that are not added up across workers.
_TAKE_MAX = {"p99_seconds", "paused_until", "failing_for", "oldest_age_seconds", "concurrency"}


def merge(snapshots: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Several workers' snapshots as one: counts and rates added, the worst of the rest.

    A p99 is the highest of the workers' (an upper bound, not a true p99 of all).
    """
    snapshots = list(snapshots)
    if not snapshots:
        raise ValueError("no snapshot to merge")
    merged = dict(snapshots[0])
    merged["workers"] = sorted(w for s in snapshots for w in s["workers"])
    merged["status"] = min(
        (s["status"] for s in snapshots),
        key=lambda st: _STATUS_ORDER.index(st) if st in _STATUS_ORDER else 0,
    )
    merged["ready"] = all(s["ready"] for s in snapshots)
    merged["uptime_seconds"] = min(s["uptime_seconds"] for s in snapshots)
    for kind in ("sources", "sinks"):
        parts: dict[str, dict[str, Any]] = {}
        for s in snapshots:
            for name, part in s[kind].items():
                parts[name] = _merge_part(parts[name], part) if name in parts else dict(part)
        merged[kind] = parts
    orphaned: dict[str, int] = {}
    for s in snapshots:
        for name, pending in s["orphaned"].items():
            orphaned[name] = orphaned.get(name, 0) + pending
    merged["orphaned"] = orphaned
    merged["storage_errors"] = [e for s in snapshots for e in s["storage_errors"]]
    # Each worker has its own quarantine and spool; a Redis sink's dead letters are shared.
    quarantined = [s["quarantined"] for s in snapshots if s.get("quarantined") is not None]
    merged["quarantined"] = sum(quarantined) if quarantined else None
    for name, sink in merged["sinks"].items():
        if sink.get("buffer") == "redis":
            counts = [
                s["sinks"][name].get("dead_letters_stored") for s in snapshots if name in s["sinks"]
            ]
            present = [c for c in counts if c is not None]
            sink["dead_letters_stored"] = max(present) if present else None
    return merged


def _merge_part(into: dict[str, Any], part: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in part.items():
        mine = into.get(key)
        if key in _TAKE_MAX:
            present = [v for v in (mine, value) if v is not None]
            into[key] = max(present) if present else None
        elif isinstance(value, bool) or not isinstance(value, int | float):
            into[key] = mine if mine is not None else value
        else:
            into[key] = (mine or 0) + value
    return into
