"""router.ingeststore: a request's writes to real spool queues, and what is counted for them."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from router.errors import FieldError, Overloaded
from router.ingeststore import store
from router.metrics import Metrics
from router.quarantine import Quarantine
from router.routing import SinkTarget
from router.sink import Sink
from router.validation import Validators
from tests.helpers.spools import options, running_spools


@dataclass
class Source:
    name: str
    metrics: Metrics
    quarantine: Quarantine


@pytest.fixture
async def setup(tmp_path):
    async with running_spools(tmp_path) as start:
        spool = await start([("a", options()), ("small", options(max_events=1)), ("b", options())])
        client = httpx.AsyncClient()
        quarantine = Quarantine(None)

        def target(name: str, when_full: str = "block") -> SinkTarget:
            sink = Sink(name, {}, client=client)
            return SinkTarget(name, sink, spool.queues[name], Validators([]), when_full=when_full)

        yield Source("in", Metrics(), quarantine), target, spool
        quarantine.close()
        await client.aclose()


async def test_each_sink_counts_what_it_stored_and_a_full_drop_sink_counts_its_drops(setup):
    source, target, spool = setup
    a, small = target("a"), target("small", when_full="drop_newest")
    puts = {a: [("e1", b"{}"), ("e2", b"{}")], small: [("e1", b"{}"), ("e2", b"{}")]}
    dead = {a: [("e3", b"{}", "no type", "untranslatable")]}
    failed = {0: [FieldError(("x",), "bad")]}
    await store(source, puts, dead, failed, [{"x": 1}], 0)
    value = source.metrics.value
    assert spool.queues["a"].pending_events == 2 and spool.queues["small"].pending_events == 0
    assert value("router_sink_events_accepted_total", sink="a") == 3  # 2 stored, 1 dead letter
    assert value("router_sink_events_dead_lettered_total", sink="a", reason="untranslatable") == 1
    assert value("router_sink_events_accepted_total", sink="small") == 2
    assert value("router_sink_events_dropped_total", sink="small", reason="spool_full") == 2
    total, events = await source.quarantine.list("in")
    assert total == 1 and events[0].errors == ["x: bad"]


async def test_a_full_blocking_sink_refuses_the_request_and_nothing_is_stored(setup):
    source, target, spool = setup
    a, small = target("a"), target("small")
    puts = {a: [("e1", b"{}")], small: [("e1", b"{}"), ("e2", b"{}")]}
    with pytest.raises(Overloaded, match="'small' is full") as info:
        await store(source, puts, {}, {}, [{}, {}], 0)
    assert info.value.headers == {"Retry-After": "5"}
    assert spool.queues["a"].pending_events == 0
    assert (
        source.metrics.value("router_events_rejected_total", source="in", reason="overloaded") == 2
    )
    assert source.metrics.value("router_sink_events_accepted_total", sink="a") == 0
