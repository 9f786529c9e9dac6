"""/metrics of a running daemon: the age of the oldest pending event and the delivery latency.

Each buffer kind (disk, memory, Redis) against a recording upstream that fails,
through a restart, then recovers. Ages and latencies are checked against the
clock read around the posts and the scrapes, never against a sleep.
"""

from __future__ import annotations

import time

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from router.testing.daemon import running_daemon
from router.testing.redis import REDIS_URL
from router.testing.upstream import FakeUpstream, Reply
from tests.helpers.sample_traffic import post, relay, settle

AGE = "router_sink_oldest_event_age_seconds"
LATENCY = "router_sink_delivery_latency_seconds"


class Scrape:
    """One GET /metrics, with the clock read just before and just after it."""

    def __init__(self, text: str, before: float, after: float):
        self.text = text
        self.before = before
        self.after = after
        self.samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; a KeyError if the daemon does not export it."""
        return self.samples[(name, tuple(sorted(labels.items())))]

    def has(self, name: str, **labels: str) -> bool:
        return (name, tuple(sorted(labels.items()))) in self.samples


async def scrape(rd) -> Scrape:
    before = time.time()
    response = await rd.client.get("/metrics")
    after = time.time()
    assert response.status_code == 200
    return Scrape(response.text, before, after)


def config(upstream_url: str, kind: str, redis_prefix: str) -> dict:
    out = relay(upstream_url, buffer=kind)
    # A memory buffer retries until the shutdown deadline while the upstream fails.
    out["server"] = {"shutdown_timeout": "1s"}
    if kind == "redis":
        out["redis"] = {"url": REDIS_URL, "prefix": redis_prefix, "refresh_interval": "0.1s"}
    return out


async def wait_for_age(rd, above: float) -> Scrape:
    """Scrape until the sink's oldest event is older than ``above`` seconds."""
    with trio.fail_after(10):
        # The age grows with no event to wait for: poll.
        while (found := await scrape(rd)).value(AGE, sink="up") <= above:  # noqa: ASYNC110
            await trio.sleep(0.05)
    return found


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["disk", "memory", "redis"])
async def test_age_and_latency_through_an_outage_and_a_restart(
    tmp_path, sample, kind, redis_prefix
):
    failing = True
    async with FakeUpstream.running() as upstream:
        upstream.handler = lambda r: Reply(500, b"down") if failing else None
        cfg = config(upstream.url, kind, redis_prefix)
        async with running_daemon(cfg, data_dir=tmp_path / "d", plugins=sample) as rd:
            assert (await scrape(rd)).value(AGE, sink="up") == 0
            posted_from = time.time()
            sent = await post(rd.client, [f"a{i}" for i in range(15)])
            sent += await post(rd.client, [f"b{i}" for i in range(10)])
            posted_by = time.time()
            with trio.fail_after(10):
                await upstream.wait_for(lambda u: u.responses_by_status.get(500, 0) >= 3)
            # The sink is down: the age rises, and is the first post's age.
            first = await wait_for_age(rd, 0)
            later = await wait_for_age(rd, first.value(AGE, sink="up"))
            age = later.value(AGE, sink="up")
            assert later.before - posted_by <= age <= later.after - posted_from
            ready = (await rd.client.get("/readyz")).json()
            assert ready["sinks"]["up"]["oldest_age"] > 0
            assert not later.has(f"{LATENCY}_count", sink="up")  # nothing delivered yet
            # Old enough that an age counted from the restart could not pass for it.
            await wait_for_age(rd, 0.5)
        # Restarted, still down: the events keep their enqueue time.
        async with running_daemon(cfg, data_dir=tmp_path / "d", plugins=sample) as rd:
            assert rd.metric("router_sink_events_recovered_total", sink="up") == len(sent)
            again = await wait_for_age(rd, 0)
            age = again.value(AGE, sink="up")
            assert again.before - posted_by <= age <= again.after - posted_from
            up_from = time.time()
            failing = False
            accounts = await settle(rd)
            up_by = time.time()
            done = await scrape(rd)
            assert done.value(AGE, sink="up") == 0
            count = done.value(f"{LATENCY}_count", sink="up")
            assert count == accounts["delivered"] == len(sent)
            # Each event waited from its post until the upstream came back, at least.
            total = done.value(f"{LATENCY}_sum", sink="up")
            assert len(sent) * (up_from - posted_by) <= total <= len(sent) * (up_by - posted_from)
            assert done.value(f"{LATENCY}_bucket", sink="up", le="+Inf") == len(sent)
            assert "_created" not in done.text
