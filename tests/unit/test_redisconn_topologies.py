"""The same queue and limit through Redis Cluster and Sentinel URLs (servers of the test's own)."""

from __future__ import annotations

import pytest

from router.redislimit import redis_gcra
from router.redisqueue import RedisDeadLetters, RedisQueue
from router.testing.redis import open_test_link, redis_cluster, redis_sentinel

pytestmark = pytest.mark.redis


async def exercise(url: str) -> None:
    """Queues of several sinks (so several slots on a cluster), dedup, dead letters, a limit."""
    async with open_test_link("topo", url=url) as (link, start):
        queues = [RedisQueue(link, f"sink{i}", dedup_window=60) for i in range(4)]
        await start()
        for queue in queues:
            assert await queue.put([("a", b"1"), ("b", b"22"), ("a", b"1")], 0.0) == 2
            batch = await queue.get_batch(10, 1 << 20, 0)
            assert [e.event_id for e in batch] == ["a", "b"]
            await queue.dead_letter(batch[:1], reason="rejected", attempts=1, status=400)
            await queue.ack(batch[1:])
            assert queue.pending_events == 0 and queue.pending_bytes == 0
            (letter,) = await RedisDeadLetters(link, queue.name).list()
            assert (letter.event_id, letter.status) == ("a", 400)
            key = link.key(f"rl:{queue.name}", "k")
            outcomes = [(await redis_gcra(link, key, 1.0, 2, 1)).allowed for _ in range(3)]
            assert outcomes == [True, True, False]


async def test_redis_cluster(tmp_path):
    async with redis_cluster(tmp_path) as url:
        await exercise(url)


async def test_redis_sentinel(tmp_path):
    async with redis_sentinel(tmp_path) as url:
        await exercise(url)
