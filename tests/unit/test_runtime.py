"""router.runtime: serving a topology and swapping another in, on real queues and HTTP."""

from __future__ import annotations

import copy
from contextlib import asynccontextmanager

import trio

from router.app import create_asgi
from router.metrics import Metrics
from router.resources import Resources
from router.runtime import Runtime
from router.testing.daemon import build_config
from router.testing.upstream import FakeUpstream, Hold, Reply
from router.topology import build_topology
from tests.helpers.sample_traffic import FAST_RETRY


class Host:
    """What the HTTP app reads from the process (router.app.AppHost)."""

    def __init__(self, registry, metrics):
        self.registry, self.metrics = registry, metrics

    def readiness(self):
        return True, {}


def doc(url):
    return {
        "sources": {"in": {"plugin": "sample", "auth": "none"}},
        "sinks": {
            "a": {
                "plugin": "sample",
                "url": f"{url}/one",
                "batch": {"max_events": 50, "max_wait": 0.01},
                "retry": FAST_RETRY,
            }
        },
        "routes": [{"from": "in", "to": "a"}],
    }


def paths(upstream):
    return [r.path for r in upstream.accepted]


async def put(queue, *names):
    await queue.put([(n, b'{"kind":"view","user":"%s"}' % n.encode()) for n in names], 0.0)


async def test_a_changed_sink_is_delivered_by_the_same_runner_with_the_new_sink(tmp_path, sample):
    async with (
        FakeUpstream.running() as upstream,
        running(tmp_path, upstream, sample) as (
            config,
            registry,
            resources,
            runtime,
            nursery,
        ),
    ):
        first = build_topology(config, registry, resources)
        await runtime.start(first, nursery)
        queue = first.sinks["a"].queue
        await put(queue, "u1")
        await upstream.wait_for(1)
        second = await switch_url(runtime, resources, registry, sample, first, upstream.url)
        runner = second.sinks["a"].runner
        assert runner is first.sinks["a"].runner and runner.sink is second.sinks["a"].sink
        await put(queue, "u2")
        await upstream.wait_for(2)
        assert paths(upstream) == ["/one/ingest", "/two/ingest"]


async def test_a_removed_sink_is_parked_and_a_restored_one_delivers_again(tmp_path, sample):
    async with (
        FakeUpstream.running() as upstream,
        running(tmp_path, upstream, sample) as (
            config,
            registry,
            resources,
            runtime,
            nursery,
        ),
    ):
        with_a = doc(upstream.url)
        first = build_topology(config, registry, resources)
        await runtime.start(first, nursery)
        without = copy.deepcopy(with_a)
        without["sinks"] = {}
        without["routes"] = []
        second = await switch_to(runtime, resources, registry, sample, first, without)
        queue = resources.queues["a"]
        # A request in flight on the old topology may still store for it.
        await put(queue, "late1", "late2")
        await trio.sleep(0.3)  # a live runner would have sent them by now
        assert upstream.accepted == [] and runtime.orphaned() == {"a": 2}
        third = build_topology(
            config, registry, resources, previous=second, runners=runtime.runners
        )
        assert third.sinks["a"].runner is first.sinks["a"].runner
        await runtime.switch(third)
        await upstream.wait_for(1)
        assert [e["user"] for e in upstream.accepted[0].json()["events"]] == ["late1", "late2"]
        assert runtime.orphaned() == {}


async def switch_to(runtime, resources, registry, sample, previous, document):
    """The topology of ``document`` built beside ``previous``, and switched to."""
    new = build_topology(
        build_config(document, plugins=sample)[0],
        registry,
        resources,
        previous=previous,
        runners=runtime.runners,
    )
    await runtime.switch(new)
    return new


async def switch_url(runtime, resources, registry, sample, previous, url):
    moved = copy.deepcopy(doc(url))
    moved["sinks"]["a"]["url"] = f"{url}/two"
    return await switch_to(runtime, resources, registry, sample, previous, moved)


async def test_a_replaced_sinks_connections_are_closed_once_nothing_sends_on_it(tmp_path, sample):
    # Each reload that replaced a sink used to keep its pool, and the pool's
    # keep-alive connections, open until shutdown.
    async with (
        FakeUpstream.running() as upstream,
        running(tmp_path, upstream, sample) as (config, registry, resources, runtime, nursery),
    ):
        first = build_topology(config, registry, resources)
        await runtime.start(first, nursery)
        await put(first.sinks["a"].queue, "u1")
        await upstream.wait_for(1)
        old_pool = first.sinks["a"].sink.transport
        assert old_pool.open_connections == 1
        second = await switch_url(runtime, resources, registry, sample, first, upstream.url)
        with trio.fail_after(10):
            while not old_pool.is_closed:  # noqa: ASYNC110 - closed by a task of the runner
                await trio.sleep(0.01)
        assert old_pool.open_connections == 0
        await put(second.sinks["a"].queue, "u2")
        await upstream.wait_for(2)
        assert paths(upstream) == ["/one/ingest", "/two/ingest"]
        assert second.sinks["a"].sink.transport.open_connections == 1


async def test_a_send_in_flight_keeps_its_replaced_sink_open_until_it_returns(tmp_path, sample):
    release = trio.Event()
    async with (
        FakeUpstream.running(default=Hold(release)) as upstream,
        running(tmp_path, upstream, sample) as (config, registry, resources, runtime, nursery),
    ):
        first = build_topology(config, registry, resources)
        await runtime.start(first, nursery)
        await put(first.sinks["a"].queue, "held")
        await upstream.wait_for(1)  # the send is in flight, held by the upstream
        old_pool = first.sinks["a"].sink.transport
        await switch_url(runtime, resources, registry, sample, first, upstream.url)
        await trio.sleep(0.2)  # a close that did not wait would have happened by now
        assert not old_pool.is_closed
        upstream.default = Reply()
        release.set()
        with trio.fail_after(10):
            while not old_pool.is_closed:  # noqa: ASYNC110 - closed by a task of the runner
                await trio.sleep(0.01)
        assert [r.path for r in upstream.accepted] == ["/one/ingest"]  # sent once, on the old sink
        assert resources.queues["a"].pending_events == 0


@asynccontextmanager
async def running(tmp_path, upstream, sample):
    """Resources and a Runtime as the daemon nests them; its runners stop before storage."""
    config, registry = build_config(doc(upstream.url), plugins=sample)
    resources = Resources(tmp_path / "d", Metrics())
    await resources.open(config.sinks)
    runtime = Runtime(resources, create_asgi(config.server), Host(registry, resources.metrics))
    try:
        async with trio.open_nursery() as storage:
            await storage.start(resources.run)
            async with trio.open_nursery() as delivery:
                yield config, registry, resources, runtime, delivery
                runtime.stop()
            await resources.flush()
            storage.cancel_scope.cancel()
    finally:
        await resources.close()
