"""status: rates and p99 from the daemon's own counters, a snapshot, and workers merged."""

from __future__ import annotations

import httpx
import trio

from router.metrics import Metrics
from router.status import Rates, merge
from router.testing.daemon import running_daemon
from router.testing.upstream import FakeUpstream, Reply


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


async def test_a_snapshot_counts_the_dead_letters_and_quarantine_stored(tmp_path, sample):
    async with FakeUpstream.running(default=Reply(400)) as refusing:
        config = {
            "sources": {"in": {"plugin": "sample", "auth": "none", "on_invalid": "quarantine"}},
            "sinks": {
                "up": {"plugin": "sample", "url": refusing.url, "batch": {"max_wait": 0.01}},
                "quiet": {"plugin": "sample", "url": refusing.url, "buffer": "memory"},
            },
            "routes": [{"from": "in", "to": "up", "filter": {"types": ["page_view"]}}],
        }
        async with (
            running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd,
            httpx.AsyncClient(base_url=rd.admin_url) as admin,
        ):
            events = [{"kind": "view", "user": f"u{i}"} for i in range(3)]
            events.append({"kind": "nope", "user": "bad"})
            r = await rd.client.post("/sample/events", json={"events": events})
            assert r.status_code == 202, r.text
            with trio.fail_after(30):
                while True:
                    status = (await admin.get("/admin/status")).json()
                    if status["sinks"]["up"]["dead_letters_stored"] == 3:
                        break
                    await trio.sleep(0.02)
    assert status["quarantined"] == 1
    assert status["sinks"]["quiet"]["dead_letters_stored"] == 0
    assert (status["sinks"]["up"]["buffer"], status["sinks"]["quiet"]["buffer"]) == (
        "disk",
        "memory",
    )


def test_merge_adds_quarantines_and_counts_a_shared_redis_stream_once():
    def worker(n, quarantined, spooled, shared):
        return {
            "workers": [n],
            "status": "ready",
            "ready": True,
            "uptime_seconds": 1.0,
            "sources": {},
            "routes": [],
            "reloads": [],
            "orphaned": {},
            "storage_errors": [],
            "sinks": {
                "disk": part(buffer="disk", dead_letters_stored=spooled),
                "shared": part(buffer="redis", dead_letters_stored=shared),
            },
            "quarantined": quarantined,
        }

    merged = merge([worker(0, 2, 4, 10), worker(1, 3, 1, 10), worker(2, None, None, None)])
    assert merged["quarantined"] == 5
    assert merged["sinks"]["disk"]["dead_letters_stored"] == 5
    assert merged["sinks"]["shared"]["dead_letters_stored"] == 10


def test_events_the_rate_limit_refuses_have_their_own_rate():
    metrics = Metrics()
    rates = Rates(metrics)
    rates.sample(now=0.0)
    metrics.events_rejected.labels("in", "rate_limited").inc(20)
    metrics.events_rejected.labels("in", "invalid").inc(10)
    rates.sample(now=2.0)
    assert rates.rate("events_limited", "in") == 10.0
    assert rates.rate("events_rejected", "in") == 15.0  # every reason
