"""status: rates and p99 from the daemon's own counters, a snapshot, and workers merged."""

from __future__ import annotations

import httpx

from router.metrics import Metrics
from router.status import Rates, merge
from router.testing.daemon import running_daemon


def test_rates_are_per_second_over_the_window():
    metrics = Metrics()
    rates = Rates(metrics, window=10)
    rates.sample(now=100.0)
    assert rates.rate("events_accepted", "in") == 0.0  # one sample is no rate
    metrics.events_accepted.labels("in").inc(50)
    metrics.requests.labels("in", "200").inc(5)
    metrics.requests.labels("in", "429").inc(5)  # every status counts as a request
    rates.sample(now=105.0)
    assert rates.rate("events_accepted", "in") == 10.0
    assert rates.rate("requests", "in") == 2.0
    assert rates.rate("requests", "other") == 0.0


def test_old_samples_leave_the_window():
    metrics = Metrics()
    rates = Rates(metrics, window=10)
    rates.sample(now=0.0)
    metrics.sink_delivered.labels("out").inc(1000)  # a burst long ago
    for t in range(1, 31):
        rates.sample(now=float(t))
    assert rates.rate("delivered", "out") == 0.0


def test_p99_is_the_bucket_holding_the_99th_percentile():
    metrics = Metrics()
    rates = Rates(metrics)
    rates.sample(now=0.0)
    for _ in range(990):
        metrics.request_seconds.labels("in", "r").observe(0.0007)
    for _ in range(10):
        metrics.request_seconds.labels("in", "r").observe(0.2)
    rates.sample(now=1.0)
    assert rates.p99("in") == 0.001
    for _ in range(100):
        metrics.request_seconds.labels("in", "r").observe(0.2)
    rates.sample(now=2.0)
    assert rates.p99("in") == 0.25
    assert rates.p99("nobody") is None


def part(**fields):
    return {"plugin": "sample", "p99_seconds": None, "last_error": None, **fields}


def test_merge_adds_counts_and_takes_the_worst_of_the_rest():
    one = {
        "workers": [0],
        "status": "ready",
        "ready": True,
        "uptime_seconds": 9.0,
        "sources": {"in": part(requests=3.0, p99_seconds=0.01)},
        "sinks": {"out": part(delivered=5.0, pending=2, paused_until=None, last_error=None)},
        "orphaned": {"old": 4},
        "storage_errors": [],
        "routes": [],
        "reloads": [],
    }
    two = {
        "workers": [1],
        "status": "degraded",
        "ready": True,
        "uptime_seconds": 2.0,
        "sources": {"in": part(requests=4.0, p99_seconds=0.05)},
        "sinks": {"out": part(delivered=1.0, pending=3, paused_until=50.0, last_error="503")},
        "orphaned": {"old": 1},
        "storage_errors": [],
        "routes": [],
        "reloads": [],
    }
    merged = merge([one, two])
    assert merged["workers"] == [0, 1]
    assert merged["status"] == "degraded" and merged["uptime_seconds"] == 2.0
    assert merged["sources"]["in"]["requests"] == 7.0
    assert merged["sources"]["in"]["p99_seconds"] == 0.05
    sink = merged["sinks"]["out"]
    assert (sink["delivered"], sink["pending"]) == (6.0, 5)
    assert (sink["paused_until"], sink["last_error"]) == (50.0, "503")
    assert merged["orphaned"] == {"old": 5}


async def test_a_running_daemons_snapshot_counts_what_it_was_sent(tmp_path, sample, sample_config):
    async with (
        running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd,
        httpx.AsyncClient(base_url=rd.admin_url) as admin,
    ):
        for i in range(3):
            body = {"events": [{"kind": "view", "user": f"u{i}"}]}
            r = await rd.client.post("/sample/events", json=body)
            assert r.status_code == 202, r.text
        status = (await admin.get("/admin/status")).json()
    assert status["status"] == "ready" and status["workers"] == [0]
    (source,) = status["sources"].values()
    assert (source["requests"], source["events_accepted"]) == (3.0, 3.0)
    assert status["routes"] and set(status["sinks"]) == set(rd.topology.sinks)


def test_events_the_rate_limit_refuses_have_their_own_rate():
    metrics = Metrics()
    rates = Rates(metrics)
    rates.sample(now=0.0)
    metrics.events_rejected.labels("in", "rate_limited").inc(20)
    metrics.events_rejected.labels("in", "invalid").inc(10)
    rates.sample(now=2.0)
    assert rates.rate("events_limited", "in") == 10.0
    assert rates.rate("events_rejected", "in") == 15.0  # every reason
