"""A Redis consumer on the suite's real Redis: claims, heartbeat, resuming, lost replies."""

from __future__ import annotations

import pytest
import trio

from router.errors import StorageError
from router.redisqueue import GROUP, RedisQueue
from router.testing.redis import open_test_link
from tests.helpers.redisqueues import ReplyDroppingProxy, raw, take

pytestmark = pytest.mark.redis


async def test_entries_a_dead_consumer_held_are_claimed_after_claim_idle(redis_prefix):
    async with (
        open_test_link(redis_prefix, consumer="dead", claim_idle=0.3) as (link_a, start_a),
        open_test_link(redis_prefix, consumer="alive", claim_idle=0.3) as (link_b, start_b),
    ):
        a, b = RedisQueue(link_a, "s"), RedisQueue(link_b, "s")
        await start_a()
        await start_b()
        await a.put([(f"e{i}", b"{}") for i in range(6)], 0.0)
        taken = await a.get_batch(4, 1 << 20, 0)  # "dead" takes 4 and never acks
        assert len(taken) == 4
        a.close()
        link_a.queues.clear()  # and stops its heartbeat, as a killed daemon would
        started = trio.current_time()
        got = await take(b, 6, batch=10)
        assert sorted(e.event_id for e in got) == [f"e{i}" for i in range(6)]
        assert trio.current_time() - started >= 0.25  # the 4 waited for claim_idle
        assert b.claimed == 4
    pending = await raw(lambda c: c.xpending(b.stream, GROUP))
    assert pending.pending == 0


async def test_held_entries_are_not_claimed_while_their_holder_lives(redis_prefix):
    async with (
        open_test_link(redis_prefix, consumer="slow", claim_idle=0.3) as (link_a, start_a),
        open_test_link(redis_prefix, consumer="other", claim_idle=0.3) as (link_b, start_b),
    ):
        a, b = RedisQueue(link_a, "s"), RedisQueue(link_b, "s")
        await start_a()
        await start_b()
        await a.put([("e0", b"{}"), ("e1", b"{}")], 0.0)
        held = await a.get_batch(10, 1 << 20, 0)  # a slow delivery, heartbeat running
        assert len(held) == 2
        with trio.move_on_after(1.2):
            stolen = await b.get_batch(10, 1 << 20, 0)
            pytest.fail(f"claimed from a live consumer: {stolen}")
        await a.ack(held)
        assert b.claimed == 0


async def test_restart_with_the_same_consumer_resumes_its_own_entries_at_once(redis_prefix):
    async with open_test_link(redis_prefix, consumer="me") as (link, start):
        queue = RedisQueue(link, "s")
        await start()
        await queue.put([(f"e{i}", b"{}") for i in range(3)], 0.0)
        assert len(await queue.get_batch(10, 1 << 20, 0)) == 3  # then "crash"
        link.queues.clear()
    async with open_test_link(redis_prefix, consumer="me") as (link, start):
        queue = RedisQueue(link, "s")
        await start()
        assert queue.recovered == 3
        with trio.fail_after(0.5):  # far below claim_idle (30 s)
            got = await take(queue, 3)
        assert [e.event_id for e in got] == ["e0", "e1", "e2"]


async def test_a_put_stored_although_its_reply_was_lost_is_counted(redis_prefix):
    proxy = ReplyDroppingProxy()
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        async with open_test_link(redis_prefix, url=proxy.url, command_timeout=2) as (link, start):
            queue = RedisQueue(link, "lost")
            counted: list[int] = []
            queue.on_stored_unacknowledged = counted.append
            await start()
            await queue.put([("before", b"1")], 0.0)
            proxy.armed = True
            with pytest.raises(StorageError):
                await queue.put([("a", b"1"), ("b", b"2"), ("c", b"3")], 0.0)
            # The events are in the stream although the caller was told they are not.
            assert await raw(lambda c: c.xlen(queue.stream)) == 4
            with trio.fail_after(10):
                while not counted:  # resolved by the queue's upkeep once Redis answers
                    await link.wait_until_retry()
                    await queue.upkeep()
            assert counted == [3]
            got = await take(queue, 4)
            assert [e.event_id for e in got] == ["before", "a", "b", "c"]
        nursery.cancel_scope.cancel()
