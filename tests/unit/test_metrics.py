"""Metrics: one registry per daemon, the names, the sink gauges read at scrape time."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from router.metrics import Metrics


def families(metrics: Metrics) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(metrics.render().decode())}


def test_two_daemons_do_not_share_counters():
    one, two = Metrics(), Metrics()
    one.requests.labels("in", "201").inc()
    assert one.value("router_requests_total", source="in", status="201") == 1
    assert two.value("router_requests_total", source="in", status="201") == 0


def test_counter_names_end_in_total_and_everything_is_router_prefixed():
    found = families(Metrics())
    assert found and all(name.startswith("router_") for name in found)
    counters = [name for name, kind in found.items() if kind == "counter"]
    # The parser strips _total; the rendered text carries it.
    text = Metrics().render().decode()
    assert all(f"# TYPE {name}_total counter" in text for name in counters)


def test_every_term_of_the_reconciliation_is_a_sink_counter():
    """The counters of the identity in the module docstring; pending is the queued gauge."""
    found = families(Metrics())
    for term in ("recovered", "accepted", "replayed", "stored_unacknowledged", "delivered",
                 "dead_lettered", "dropped"):  # fmt: skip
        assert found[f"router_sink_events_{term}"] == "counter"
    assert found["router_sink_events_queued"] == "gauge"


def test_sink_gauges_are_read_from_the_stats_at_each_scrape():
    metrics = Metrics()
    stats = {"pending_events": 3, "in_flight": None, "pending_bytes": 120, "paused_for": 1.5}
    metrics.watch_sink("out", lambda: stats)
    assert metrics.value("router_sink_events_queued", sink="out") == 3
    assert metrics.value("router_sink_events_in_flight", sink="out") == 0  # None reads as 0
    assert metrics.value("router_sink_concurrency_limit", sink="out") == 0  # absent reads as 0
    stats["pending_events"] = 7
    assert metrics.value("router_sink_events_queued", sink="out") == 7
    assert re.search(rb'router_sink_spool_bytes\{sink="out"\} 120\.0', metrics.render())


def test_worker_info_labels_the_process():
    metrics = Metrics()
    metrics.worker_info(2)
    assert metrics.value("router_worker_info", worker="2") == 1


def test_value_of_an_absent_sample_is_zero():
    assert Metrics().value("router_no_such_metric") == 0.0


def test_no_created_series_for_counters_or_histograms():
    metrics = Metrics()
    metrics.requests.labels("in", "201").inc()
    metrics.request_seconds.labels("in", "r").observe(0.01)
    metrics.sink_batch_size.labels("out").observe(3)
    metrics.sink_latency.observe("out", 10.0, [9.0])
    text = metrics.render().decode()
    assert "router_requests_total" in text and "router_request_duration_seconds_count" in text
    assert "_created" not in text


def test_delivery_latency_counts_each_event_of_a_batch():
    metrics = Metrics()
    latency = metrics.sink_latency
    # Ages 0.004, 0.2, 0.2 and 4000 s; a clock that went back counts as 0.
    latency.observe("out", 5000.0, [4999.996, 4999.8, 4999.8, 1000.0, 5001.0])
    latency.observe("other", 1.0, [0.5])

    def bucket(le: str, sink: str = "out") -> float:
        return metrics.value("router_sink_delivery_latency_seconds_bucket", sink=sink, le=le)

    assert metrics.value("router_sink_delivery_latency_seconds_count", sink="out") == 5
    assert (bucket("0.005"), bucket("0.1"), bucket("0.25"), bucket("3600.0")) == (2, 2, 4, 4)
    assert bucket("+Inf") == 5
    total = metrics.value("router_sink_delivery_latency_seconds_sum", sink="out")
    assert abs(total - (0.004 + 0.2 + 0.2 + 4000)) < 1e-6
    assert metrics.value("router_sink_delivery_latency_seconds_count", sink="other") == 1
    assert families(metrics)["router_sink_delivery_latency_seconds"] == "histogram"


def test_oldest_event_age_gauge_reads_oldest_age():
    metrics = Metrics()
    stats = {"oldest_age": 12.5}
    metrics.watch_sink("out", lambda: stats)
    assert metrics.value("router_sink_oldest_event_age_seconds", sink="out") == 12.5
    stats["oldest_age"] = 0.0
    assert metrics.value("router_sink_oldest_event_age_seconds", sink="out") == 0
