"""router.resources: storage, queues and pools that outlive a topology."""

from __future__ import annotations

import pytest
import trio

from router.metrics import Metrics
from router.redisqueue import RedisQueue
from router.resources import Resources
from router.spool import SqliteQueue
from router.testing.daemon import build_config
from router.testing.redis import REDIS_URL


def config_of(tmp_path, sample, *, redis_prefix=None):
    sinks = {
        "disk": {"plugin": "file", "path": str(tmp_path / "disk.ndjson")},
        "ram": {"plugin": "file", "path": str(tmp_path / "ram.ndjson"), "buffer": "memory"},
    }
    doc = {"sources": {"in": {"plugin": "sample", "auth": "none"}}, "sinks": sinks}
    if redis_prefix is not None:
        doc["redis"] = {"url": REDIS_URL, "prefix": redis_prefix}
        sinks["shared"] = {
            "plugin": "sample",
            "url": "http://127.0.0.1:9",
            "buffer": "redis",
        }
    doc["routes"] = [{"from": "in", "to": list(sinks)}]
    return build_config(doc, plugins=sample)[0]


async def test_open_makes_the_data_dir_and_a_queue_per_sink(tmp_path, sample):
    config = config_of(tmp_path, sample)
    resources = Resources(tmp_path / "new" / "data", Metrics())
    with pytest.raises(RuntimeError, match="open"):
        resources.quarantine  # noqa: B018
    try:
        await resources.open(config.sinks)
        assert (tmp_path / "new" / "data" / "spool.db").exists()
        assert set(resources.queues) == {"disk", "ram"}
        assert all(isinstance(q, SqliteQueue) for q in resources.queues.values())
        assert resources.queues["disk"].durable and not resources.queues["ram"].durable
        assert resources.storage_errors() == []
        assert resources.quarantine.path.endswith("quarantine.db")
    finally:
        await resources.close()


@pytest.mark.redis
async def test_a_redis_buffer_gets_a_stream_queue_on_the_one_link(tmp_path, sample, redis_prefix):
    config = config_of(tmp_path, sample, redis_prefix=redis_prefix)
    resources = Resources(tmp_path / "data", Metrics(), redis=config.redis, worker=3)
    try:
        await resources.open(config.sinks)
        assert isinstance(resources.queues["shared"], RedisQueue)
        link = resources.redis_link()
        assert link is resources.redis_link()  # one link per process
        async with trio.open_nursery() as nursery:
            await nursery.start(resources.run)
            await resources.flush()
            nursery.cancel_scope.cancel()
    finally:
        await resources.close()


async def test_a_redis_link_without_a_redis_section_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="no redis config"):
        Resources(tmp_path, Metrics()).redis_link()


async def test_pending_events_survive_flush_and_reopen(tmp_path, sample):
    config = config_of(tmp_path, sample)
    first = Resources(tmp_path / "data", Metrics())
    await first.open(config.sinks)
    async with trio.open_nursery() as nursery:
        await nursery.start(first.run)
        await first.queues["disk"].put([("e1", b"{}"), ("e2", b"{}")], 0.0)
        await first.queues["ram"].put([("e3", b"{}")], 0.0)
        await first.flush()  # commits the memory buffer too
        nursery.cancel_scope.cancel()
    await first.close()
    metrics = Metrics()
    again = Resources(tmp_path / "data", metrics)
    try:
        await again.open(config.sinks)
        assert again.queues["disk"].pending_events == 2
        assert again.queues["ram"].pending_events == 1
        assert metrics.value("router_sink_events_recovered_total", sink="disk") == 2
    finally:
        await again.close()


async def test_open_drain_returns_only_queues_with_pending_events(tmp_path, sample):
    config = config_of(tmp_path, sample)
    old = Resources(tmp_path / "old", Metrics())
    await old.open(config.sinks)
    async with trio.open_nursery() as nursery:
        await nursery.start(old.run)
        await old.queues["disk"].put([("e1", b"{}")], 0.0)
        await old.flush()
        nursery.cancel_scope.cancel()
    await old.close()
    resources = Resources(tmp_path / "data", Metrics())
    try:
        await resources.open(config.sinks)
        drained = await resources.open_drain(tmp_path / "old", config.sinks)
        assert set(drained) == {"disk"} and drained["disk"].pending_events == 1
    finally:
        await resources.close()


async def test_close_closes_every_connection_pool(tmp_path, sample):
    config = config_of(tmp_path, sample)
    resources = Resources(tmp_path / "data", Metrics())
    await resources.open(config.sinks)
    clients = [resources.http_client(cfg) for cfg in config.sinks.values()]
    await resources.close()
    assert all(client.is_closed for client in clients)


@pytest.mark.redis
async def test_stored_counts_read_the_spool_redis_and_the_quarantine(
    tmp_path, sample, redis_prefix
):
    config = config_of(tmp_path, sample, redis_prefix=redis_prefix)
    resources = Resources(tmp_path / "data", Metrics(), redis=config.redis)
    try:
        await resources.open(config.sinks)
        async with trio.open_nursery() as nursery:
            await nursery.start(resources.run)
            assert await resources.stored_counts(config.sinks) == {
                "dead_letters": {"disk": 0, "ram": 0, "shared": 0},
                "quarantined": 0,
            }
            await resources.queues["disk"].dead_letter_new([("e1", b"{}", "bad")], 0.0)
            await resources.queues["disk"].dead_letter_new([("e2", b"{}", "bad")], 0.0)
            await resources.queues["shared"].dead_letter_new([("e3", b"{}", "bad")], 0.0)
            await resources.quarantine.add("in", 0, [({"kind": "x"}, ["kind: unknown"])])
            expected = {"dead_letters": {"disk": 2, "ram": 0, "shared": 1}, "quarantined": 1}
            with trio.fail_after(10):  # a count just taken is reused for a moment
                while await resources.stored_counts(config.sinks) != expected:  # noqa: ASYNC110
                    await trio.sleep(0.01)
            # A sink no store knows yet has no count rather than a made-up 0.
            unknown = {**config.sinks, "later": config.sinks["disk"]}
            assert (await resources.stored_counts(unknown))["dead_letters"]["later"] is None
            await resources.flush()
            nursery.cancel_scope.cancel()
    finally:
        await resources.close()


async def test_stored_counts_without_redis_running_leave_its_sinks_unknown(tmp_path, sample):
    config = config_of(tmp_path, sample, redis_prefix="never-connected")
    resources = Resources(tmp_path / "data", Metrics(), redis=config.redis)
    try:
        await resources.open(config.sinks)  # the link connects only in run()
        counts = await resources.stored_counts(config.sinks)
        assert counts["dead_letters"] == {"disk": 0, "ram": 0, "shared": None}
    finally:
        await resources.close()
