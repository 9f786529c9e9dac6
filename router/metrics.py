"""Prometheus metrics, one registry per daemon (no global state, so tests can run several).

Names follow ``router_<what>_<unit>_total``. Counters reconcile per sink::

    recovered + accepted + replayed + stored_unacknowledged
        = delivered + dead_lettered + dropped + pending

No ``_created`` series: in the text format Prometheus stores each as a
series of its own, one more per counter and histogram child, which rate()
and histogram_quantile() never read.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate, groupby

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["EventLatency", "Metrics"]

# Process-wide in prometheus_client (read at each scrape): every registry loses them.
disable_created_metrics()

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_DELIVERY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_BATCH = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)


class Metrics:
    """Every metric the daemon exports."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # -- ingest
        c, h = self._counter, self._histogram
        self.requests = c("router_requests_total", "HTTP requests answered", "source", "status")
        self.events_received = c(
            "router_events_received_total", "Events found in ingest requests", "source"
        )
        self.events_accepted = c(
            "router_events_accepted_total", "Events accepted (client acknowledged)", "source"
        )
        self.events_rejected = c(
            "router_events_rejected_total",
            "Events refused or quarantined, by reason",
            "source",
            "reason",
        )
        self.events_unrouted = c(
            "router_events_unrouted_total",
            "Accepted events that matched no route (by config)",
            "source",
        )
        self.request_seconds = h(
            "router_request_duration_seconds",
            "Time to answer an ingest request",
            _LATENCY,
            "source",
            "route",
        )
        # -- sinks
        self.sink_accepted = c(
            "router_sink_events_accepted_total",
            "Events routed to a sink and acknowledged to the client",
            "sink",
        )
        self.sink_recovered = c(
            "router_sink_events_recovered_total",
            "Events found pending in the spool at startup",
            "sink",
        )
        self.sink_replayed = c(
            "router_sink_events_replayed_total",
            "Dead letters put back into the queue while running",
            "sink",
        )
        self.sink_stored_unacknowledged = c(
            "router_sink_events_stored_unacknowledged_total",
            "Events Redis stored although the client was told to retry (reply lost)",
            "sink",
        )
        self.sink_delivered = c(
            "router_sink_events_delivered_total", "Events the upstream accepted", "sink"
        )
        self.sink_retried = c(
            "router_sink_events_retried_total",
            "Event delivery attempts that will be retried",
            "sink",
        )
        self.sink_dead = c(
            "router_sink_events_dead_lettered_total",
            "Events moved to the dead letters",
            "sink",
            "reason",
        )
        self.sink_dropped = c(
            "router_sink_events_dropped_total",
            "Events not queued on purpose (drop_newest)",
            "sink",
            "reason",
        )
        self.sink_duplicates = c(
            "router_sink_events_duplicate_total", "Events skipped as duplicates by id", "sink"
        )
        self.sink_batch_size = h(
            "router_sink_batch_size_events", "Events per batch", _BATCH, "sink"
        )
        self.sink_request_seconds = h(
            "router_sink_request_duration_seconds",
            "Time of one successful upstream call",
            _LATENCY,
            "sink",
        )
        self.sink_latency = EventLatency(
            "router_sink_delivery_latency_seconds",
            "From acceptance (enqueue) to the upstream's 2xx, one observation per event",
            _DELIVERY,
            r,
        )
        # -- redis (shared limits and queues)
        self.ratelimit_backend_errors = c(
            "router_ratelimit_backend_errors_total",
            "Rate-limit decisions Redis could not make (on_backend_error applied)",
            "limit",
        )
        self.redis_errors = c(
            "router_redis_errors_total",
            "Redis calls that failed for want of a connection or by timeout",
            "operation",
        )
        self._gauges = {
            name: Gauge(f"router_sink_{name}", doc, ["sink"], registry=r)
            for name, doc in (
                ("events_queued", "Events pending delivery, in flight included"),
                ("events_in_flight", "Events being sent"),
                ("spool_bytes", "Bytes of pending events"),
                ("concurrency_limit", "Current concurrency limit (AIMD)"),
                ("paused_seconds", "Seconds until a paused sink resumes"),
                ("oldest_event_age_seconds", "Age of the oldest pending event (0 if none)"),
            )
        }

    def _counter(self, name: str, doc: str, *labels: str) -> Counter:
        return Counter(name, doc, labels, registry=self.registry)

    def _histogram(
        self, name: str, doc: str, buckets: tuple[float, ...], *labels: str
    ) -> Histogram:
        return Histogram(name, doc, labels, buckets=buckets, registry=self.registry)

    def worker_info(self, worker: int) -> None:
        """Mark this daemon as worker ``worker`` of a ``server.workers > 1`` process group."""
        info = Gauge(
            "router_worker_info", "This process's worker index", ["worker"], registry=self.registry
        )
        info.labels(str(worker)).set(1)

    def watch_sink(self, sink: str, stats: Callable[[], dict]) -> None:
        """Read a sink's gauges from ``stats()`` at each scrape."""
        fields = {
            "events_queued": "pending_events",
            "events_in_flight": "in_flight",
            "spool_bytes": "pending_bytes",
            "concurrency_limit": "concurrency",
            "paused_seconds": "paused_for",
            "oldest_event_age_seconds": "oldest_age",
        }
        for gauge, key in fields.items():
            self._gauges[gauge].labels(sink).set_function(
                lambda key=key: float(stats().get(key) or 0)
            )

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (0 if absent); for tests and ``router`` commands."""
        return self.registry.get_sample_value(name, labels) or 0.0

    def render(self) -> bytes:
        return generate_latest(self.registry)


class EventLatency(Collector):
    """A per-sink histogram of delivery latency, one observation per event.

    A batch's events are counted in one call: ``prometheus_client``'s
    Histogram takes about a microsecond per observation, a millisecond per
    batch of a thousand events. Updated from the daemon's Trio thread only.
    """

    def __init__(
        self, name: str, doc: str, buckets: tuple[float, ...], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.doc = doc
        self.bounds = (*buckets, math.inf)
        #: Per sink: the count of each bucket (not cumulative), and the sum.
        self._counts: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}
        registry.register(self)

    def observe(self, sink: str, now: float, enqueued: Iterable[float]) -> None:
        """One observation per enqueue time: ``now`` minus it (0 if the clock went back).

        Counted by runs of one time (one request's events are adjacent in a
        batch), so a batch costs a few bisects, not one per event.
        """
        counts = self._counts.get(sink)
        if counts is None:
            counts = self._counts[sink] = [0] * len(self.bounds)
        bounds = self.bounds
        total = 0.0
        for at, run in groupby(enqueued):
            n = len(list(run))
            seconds = now - at if now > at else 0.0
            counts[bisect_left(bounds, seconds)] += n
            total += seconds * n
        self._sums[sink] = self._sums.get(sink, 0.0) + total

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = self.describe()[0]
        les = [floatToGoString(b) for b in self.bounds]
        for sink, counts in self._counts.items():
            buckets = list(zip(les, accumulate(counts), strict=True))
            family.add_metric([sink], buckets, self._sums[sink])
        yield family

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.doc, labels=["sink"])]
