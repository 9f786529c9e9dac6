"""router.queue: both queue kinds implement SinkQueue, on real SQLite and real Redis."""

from __future__ import annotations

import collections
import inspect
import types

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from router import errors, queue, redisqueue, spool
from router.config import RedisConfig
from router.deadletters import DeadLetters
from router.queue import STATISTICS, DeadLetterStore, SinkQueue
from router.redisqueue import RedisQueue, SyncDeadLetters
from router.testing.daemon import running_daemon
from router.testing.redis import REDIS_URL, delete_prefix, new_prefix, open_test_link


def protocol_methods(protocol: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member, eval_str=True)
        for name, member in vars(protocol).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


def assert_implements(obj: object, protocol: type) -> None:
    """``obj`` has every member of ``protocol``, each method with the same signature."""
    assert isinstance(obj, protocol)
    methods = protocol_methods(protocol)
    assert methods, "the protocol declares no methods"
    for name, expected in methods.items():
        method = getattr(type(obj), name)
        assert inspect.iscoroutinefunction(method) == inspect.iscoroutinefunction(
            getattr(protocol, name)
        ), name
        assert inspect.signature(method, eval_str=True) == expected, name
    for name in protocol.__annotations__:
        assert hasattr(obj, name), name


def assert_sink_queue(q: object) -> None:
    assert_implements(q, SinkQueue)
    assert set(STATISTICS) <= set(q.statistics())
    assert not q.full() and q.full(q.max_events + 1)


@pytest.mark.redis
async def test_the_daemons_queues_implement_sink_queue(tmp_path, sample, redis_prefix):
    config = {
        "redis": {"url": REDIS_URL, "prefix": redis_prefix},
        "sources": {"in": {"plugin": "sample", "auth": "none"}},
        "sinks": {
            kind: {"plugin": "file", "path": str(tmp_path / f"{kind}.ndjson"), "buffer": kind}
            for kind in ("disk", "memory", "redis")
        },
        "routes": [{"from": "in", "to": ["disk", "memory", "redis"]}],
    }
    async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
        queues = rd.topology.queues
        assert type(queues["disk"]) is type(queues["memory"]) is spool.SqliteQueue
        assert type(queues["redis"]) is RedisQueue
        for q in queues.values():
            assert_sink_queue(q)
        assert queues["disk"].durable and not queues["memory"].durable
        # Nothing but a Redis queue can store a write whose reply was lost: no dead callback.
        assert not hasattr(queues["disk"], "on_stored_unacknowledged")
        queues["redis"].on_stored_unacknowledged(2)
        assert rd.metric("router_sink_events_stored_unacknowledged_total", sink="redis") == 2
        assert rd.metric("router_sink_events_stored_unacknowledged_total", sink="disk") == 0


@pytest.mark.redis
async def test_queues_built_directly_implement_sink_queue(tmp_path, redis_prefix):
    s = spool.Spool(tmp_path / "spool.db")
    await s.open([("a", {"durable": True, "dedup_window": 60.0}), ("b", {"durable": False})])
    try:
        for q in s.queues.values():
            assert_sink_queue(q)
        assert s.queues["a"].dedup_window == 60.0 and s.queues["b"].dedup_window is None
    finally:
        s.close_db()
    async with open_test_link(redis_prefix) as (link, start):
        q = RedisQueue(link, "r", dedup_window=5.0)
        await start()
        assert_sink_queue(q)
        assert q.dedup_window == 5.0


async def test_many_sinks_each_get_their_own_commits(tmp_path):
    s = spool.Spool(tmp_path / "spool.db")
    names = [f"s{i}" for i in range(50)]
    await s.open([(name, {}) for name in names])
    async with trio.open_nursery() as nursery:
        await nursery.start(s.run)
        with trio.fail_after(10):
            for i, name in enumerate(names):
                assert await s.queues[name].put([(f"e{j}", b"{}") for j in range(i % 3)], 0.0) == (
                    i % 3
                )
        assert [s.queues[name].pending_events for name in names] == [i % 3 for i in range(50)]
        await s.close()


def test_old_import_paths_name_the_same_objects():
    assert spool.Entry is redisqueue.Entry is queue.Entry
    assert spool.DeadLetter is redisqueue.DeadLetter is queue.DeadLetter
    assert spool.StorageError is queue.StorageError is errors.StorageError
    assert queue.StorageUnusable is errors.StorageUnusable


def test_the_spools_dead_letters_implement_dead_letter_store(tmp_path):
    async def make() -> None:
        s = spool.Spool(tmp_path / "spool.db")
        await s.open([("a", {})])
        s.close_db()

    trio.run(make)
    with DeadLetters(tmp_path) as dlq:
        assert_implements(dlq, DeadLetterStore)


@pytest.mark.redis
def test_redis_dead_letters_are_those_of_the_sink_each_call_names():
    prefix = new_prefix()

    async def dead_letter(counts: dict[str, int]) -> None:
        async with open_test_link(prefix) as (link, start):
            queues = {name: RedisQueue(link, name) for name in counts}
            await start()
            for name, n in counts.items():
                await queues[name].dead_letter_new(
                    [(f"{name}{i}", b"{}", f"bad {name}") for i in range(n)], 1.0
                )

    try:
        trio.run(dead_letter, {"a": 1, "b": 3})
        dlq = SyncDeadLetters(
            types.SimpleNamespace(redis=RedisConfig(url=REDIS_URL, prefix=prefix))
        )
        assert_implements(dlq, DeadLetterStore)
        assert (dlq.count("a"), dlq.count("b")) == (1, 3)
        assert [d.event_id for d in dlq.list("b")] == ["b0", "b1", "b2"]
        assert {d.sink for d in dlq.list("b")} == {"b"}
        assert dlq.get("a", 1).reason == "bad a"
        assert dlq.purge("b", [2]) == 1
        assert (dlq.count("a"), dlq.count("b")) == (1, 2)
    finally:
        trio.run(delete_prefix, prefix)


def _take_one_by_one(holder, batch, size, max_events, max_bytes):
    """What BufferedQueue._take does, written as the plain loop (the reference)."""
    buffer = holder._buffer
    while buffer and len(batch) < max_events:
        n = len(buffer[0].payload)
        if batch and size + n > max_bytes:
            break
        batch.append(buffer.popleft())
        size += n
    return size


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40), max_size=30),
    taken=st.lists(st.integers(0, 40), max_size=5),
    max_events=st.integers(1, 35),
    max_bytes=st.integers(0, 200),
)
def test_taking_a_batch_at_once_takes_what_the_event_by_event_loop_takes(
    sizes, taken, max_events, max_bytes
):
    def entries(lengths, base):
        return [queue.Entry(base + i, f"e{base + i}", b"x" * n, 0.0) for i, n in enumerate(lengths)]

    results = []
    for take in (queue.BufferedQueue._take, _take_one_by_one):
        holder = types.SimpleNamespace(_buffer=collections.deque(entries(sizes, 100)))
        batch = entries(taken, 0)
        size = take(holder, batch, sum(taken), max_events, max_bytes)
        results.append((size, batch, list(holder._buffer)))
    assert results[0] == results[1]
