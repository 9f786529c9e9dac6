"""Prometheus metrics, one registry per daemon (no global state, so tests can run several).

Names follow ``router_<what>_<unit>_total``. Counters reconcile per sink::

    recovered + accepted + replayed + stored_unacknowledged
        = delivered + dead_lettered + dropped + pending
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_DELIVERY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_BATCH = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)


class Metrics:
    """Every metric the daemon exports."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # -- ingest
        self.requests = Counter(
            "router_requests_total", "HTTP requests answered", ["source", "status"], registry=r
        )
        self.events_received = Counter(
            "router_events_received_total",
            "Events found in ingest requests",
            ["source"],
            registry=r,
        )
        self.events_accepted = Counter(
            "router_events_accepted_total",
            "Events accepted (client acknowledged)",
            ["source"],
            registry=r,
        )
        self.events_rejected = Counter(
            "router_events_rejected_total",
            "Events refused or quarantined, by reason",
            ["source", "reason"],
            registry=r,
        )
        self.events_unrouted = Counter(
            "router_events_unrouted_total",
            "Accepted events that matched no route (by config)",
            ["source"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "router_request_duration_seconds",
            "Time to answer an ingest request",
            ["source", "route"],
            buckets=_LATENCY,
            registry=r,
        )
        # -- sinks
        self.sink_accepted = Counter(
            "router_sink_events_accepted_total",
            "Events routed to a sink and acknowledged to the client",
            ["sink"],
            registry=r,
        )
        self.sink_recovered = Counter(
            "router_sink_events_recovered_total",
            "Events found pending in the spool at startup",
            ["sink"],
            registry=r,
        )
        self.sink_replayed = Counter(
            "router_sink_events_replayed_total",
            "Dead letters put back into the queue while running",
            ["sink"],
            registry=r,
        )
        self.sink_stored_unacknowledged = Counter(
            "router_sink_events_stored_unacknowledged_total",
            "Events Redis stored although the client was told to retry (reply lost)",
            ["sink"],
            registry=r,
        )
        self.sink_delivered = Counter(
            "router_sink_events_delivered_total",
            "Events the upstream accepted",
            ["sink"],
            registry=r,
        )
        self.sink_retried = Counter(
            "router_sink_events_retried_total",
            "Event delivery attempts that will be retried",
            ["sink"],
            registry=r,
        )
        self.sink_dead = Counter(
            "router_sink_events_dead_lettered_total",
            "Events moved to the dead letters",
            ["sink", "reason"],
            registry=r,
        )
        self.sink_dropped = Counter(
            "router_sink_events_dropped_total",
            "Events not queued on purpose (drop_newest)",
            ["sink", "reason"],
            registry=r,
        )
        self.sink_duplicates = Counter(
            "router_sink_events_duplicate_total",
            "Events skipped as duplicates by id",
            ["sink"],
            registry=r,
        )
        self.sink_batch_size = Histogram(
            "router_sink_batch_size_events",
            "Events per batch",
            ["sink"],
            buckets=_BATCH,
            registry=r,
        )
        self.sink_request_seconds = Histogram(
            "router_sink_request_duration_seconds",
            "Time of one successful upstream call",
            ["sink"],
            buckets=_LATENCY,
            registry=r,
        )
        self.sink_latency = Histogram(
            "router_sink_delivery_latency_seconds",
            "From acceptance to delivery (oldest event of a batch)",
            ["sink"],
            buckets=_DELIVERY,
            registry=r,
        )
        # -- redis (shared limits and queues)
        self.ratelimit_backend_errors = Counter(
            "router_ratelimit_backend_errors_total",
            "Rate-limit decisions Redis could not make (on_backend_error applied)",
            ["limit"],
            registry=r,
        )
        self.redis_errors = Counter(
            "router_redis_errors_total",
            "Redis calls that failed for want of a connection or by timeout",
            ["operation"],
            registry=r,
        )
        self._gauges = {
            name: Gauge(f"router_sink_{name}", doc, ["sink"], registry=r)
            for name, doc in (
                ("events_queued", "Events pending delivery, in flight included"),
                ("events_in_flight", "Events being sent"),
                ("spool_bytes", "Bytes of pending events"),
                ("concurrency_limit", "Current concurrency limit (AIMD)"),
                ("paused_seconds", "Seconds until a paused sink resumes"),
            )
        }

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
