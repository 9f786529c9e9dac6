"""RedisQueue on the suite's real Redis: order, ack, claims, dead letters, dedup, errors."""

from __future__ import annotations

import coredis
import pytest
import trio

from router.redisqueue import GROUP, RedisDeadLetters, RedisQueue
from router.spool import StorageError
from router.testing.redis import REDIS_URL, open_test_link

pytestmark = pytest.mark.redis


async def take(queue, expected: int, batch: int = 7, ack: bool = True) -> list:
    """Take (and ack) batches until ``expected`` entries came out."""
    out = []
    with trio.fail_after(10):
        while len(out) < expected:
            entries = await queue.get_batch(batch, 1 << 20, 0)
            out += entries
            if ack:
                await queue.ack(entries)
    return out


async def raw(fn):
    async with coredis.Redis.from_url(REDIS_URL) as client:
        return await fn(client)


async def test_entries_come_out_in_order_and_ack_deletes_them(redis_prefix):
    async with open_test_link(redis_prefix) as (link, start):
        queue = RedisQueue(link, "a")
        await start()
        for i in range(0, 30, 10):
            assert await queue.put([(f"e{j:02}", b"x" * j) for j in range(i, i + 10)], 1.5) == 10
        assert queue.pending_events == 30 and queue.pending_bytes == sum(range(30))
        assert queue.full(1_000_000) and not queue.full(10)
        first = await queue.get_batch(4, 1 << 20, 0)
        assert [e.event_id for e in first] == ["e00", "e01", "e02", "e03"]
        assert first[0].enqueued_at == 1.5 and first[3].payload == b"xxx"
        assert queue.in_flight == 4
        await queue.ack(first)
        rest = await take(queue, 26)
        assert [e.event_id for e in rest] == [f"e{j:02}" for j in range(4, 30)]
        assert queue.pending_events == 0 and queue.pending_bytes == 0 and queue.in_flight == 0
    assert await raw(lambda c: c.xlen(queue.stream)) == 0
    assert int(await raw(lambda c: c.get(queue.bytes_key))) == 0
    pending = await raw(lambda c: c.xpending(queue.stream, GROUP))
    assert pending.pending == 0


async def test_batches_respect_max_bytes_and_max_wait(redis_prefix):
    async with open_test_link(redis_prefix) as (link, start):
        queue = RedisQueue(link, "a")
        await start()
        await queue.put([(f"e{i}", b"x" * 100) for i in range(5)], 0.0)
        batch = await queue.get_batch(10, 250, 0)
        assert len(batch) == 2  # a third would exceed 250 bytes
        await queue.ack(batch)
        # max_wait: the batch waits for more events after its first one.
        async with trio.open_nursery() as nursery:

            async def late_put():
                await trio.sleep(0.1)
                await queue.put([("late", b"y")], 0.0)

            nursery.start_soon(late_put)
            batch = await queue.get_batch(10, 1 << 20, 0.5)
        assert [e.event_id for e in batch] == ["e2", "e3", "e4", "late"]
        await queue.ack(batch)


async def test_close_ends_a_waiting_get_batch(redis_prefix):
    async with open_test_link(redis_prefix) as (link, start):
        queue = RedisQueue(link, "a")
        await start()
        got = []

        async def wait():
            got.append(await queue.get_batch(10, 1 << 20, 0))

        with trio.fail_after(0.5):  # well below MAX_BLOCK
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                await trio.sleep(0.05)
                queue.close()
        assert got == [[]]


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


async def test_graceful_close_gives_back_what_was_read_but_not_sent(redis_prefix):
    async with open_test_link(redis_prefix, consumer="leaving") as (link_a, start_a):
        a = RedisQueue(link_a, "s")
        await start_a()
        await a.put([(f"e{i}", b"{}") for i in range(5)], 0.0)
        batch = await a.get_batch(2, 1 << 20, 0)
        a.release(batch)  # shutdown: in-flight batch put back
    # link closed: a.aclose() requeued everything it held
    async with open_test_link(redis_prefix, consumer="staying") as (link_b, start_b):
        b = RedisQueue(link_b, "s")
        await start_b()
        with trio.fail_after(0.5):
            got = await take(b, 5)
        assert sorted(e.event_id for e in got) == [f"e{i}" for i in range(5)]
        assert b.claimed == 0


async def test_dedup_across_two_daemons_by_event_id(redis_prefix):
    async with (
        open_test_link(redis_prefix, consumer="a") as (link_a, start_a),
        open_test_link(redis_prefix, consumer="b") as (link_b, start_b),
    ):
        a = RedisQueue(link_a, "d", dedup_window=60)
        b = RedisQueue(link_b, "d", dedup_window=60)
        await start_a()
        await start_b()
        assert await a.put([("x", b"1"), ("y", b"2")], 0.0) == 2
        assert await b.put([("y", b"2"), ("z", b"3")], 0.0) == 1
        assert await b.put([("x", b"1")], 0.0) == 0
        got = await take(a, 3)
        assert [e.event_id for e in got] == ["x", "y", "z"]
        ttl = await raw(lambda c: c.pttl(link_a.key("d", "dedup", "x")))
        assert 0 < ttl <= 60_000


async def test_dead_letters_list_show_replay_and_purge(redis_prefix):
    replays = []
    async with open_test_link(redis_prefix) as (link, start):
        queue = RedisQueue(link, "s")
        queue.on_replayed = replays.append
        await start()
        await queue.put([(f"e{i}", f'{{"n":{i}}}'.encode()) for i in range(4)], 10.0)
        batch = await queue.get_batch(3, 1 << 20, 0)
        await queue.dead_letter(
            batch[:2], reason="rejected", attempts=3, status=400, response="bad field"
        )
        await queue.dead_letter_new([("new", b"{}", "untranslatable: no type")], 20.0)
        assert queue.pending_events == 2  # e2 (in flight) and e3
        dlq = RedisDeadLetters(link, "s")
        assert await dlq.count() == 3
        letters = await dlq.list()
        assert [(d.id, d.event_id, d.reason) for d in letters] == [
            (1, "e0", "rejected"),
            (2, "e1", "rejected"),
            (3, "new", "untranslatable: no type"),
        ]
        first = await dlq.get(1)
        assert (first.status, first.response, first.attempts) == (400, "bad field", 3)
        assert first.payload == b'{"n":0}' and first.enqueued_at == 10.0
        assert (await dlq.get(3)).status is None
        assert await dlq.get(99) is None
        assert [d.id for d in await dlq.list(offset=1, limit=1)] == [2]
        # Replay puts them back at the end of the stream; the queue counts replays.
        assert await dlq.replay([1, 2]) == 2
        await queue.ack(batch[2:])
        got = await take(queue, 3)
        assert [e.event_id for e in got] == ["e3", "e0", "e1"]
        assert replays == [2]
        assert await dlq.purge() == 1
        assert await dlq.count() == 0
        # Ids keep growing after a purge.
        await queue.dead_letter_new([("later", b"{}", "x")], 30.0)
        assert [d.id for d in await dlq.list()] == [4]


async def test_redis_down_put_raises_storage_error_and_readers_wait(tmp_path):
    async with open_test_link("nowhere", url="redis://127.0.0.1:9/0", connect_timeout=0.5) as (
        link,
        start,
    ):
        queue = RedisQueue(link, "s")
        with trio.fail_after(5):
            await start()  # reports started although Redis is unreachable
        with pytest.raises(StorageError):
            await queue.put([("e", b"{}")], 0.0)
        with pytest.raises(StorageError):
            await queue.dead_letter_new([("e", b"{}", "x")], 0.0)
        assert not link.up
        with trio.move_on_after(0.3) as waited:
            await queue.get_batch(1, 1 << 20, 0)
        assert waited.cancelled_caught


class ReplyDroppingProxy:
    """A TCP proxy to Redis that, when armed, forwards one request and swallows its reply.

    The request runs in Redis; the client sees its connection die: a write
    whose outcome it cannot know.
    """

    def __init__(self) -> None:
        self.armed = False
        self.url = ""

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async def handle(client: trio.SocketStream) -> None:
            server = await trio.open_tcp_stream("127.0.0.1", 6379)
            async with client, server, trio.open_nursery() as nursery:

                async def upstream() -> None:
                    async for data in client:
                        await server.send_all(data)
                    nursery.cancel_scope.cancel()

                async def downstream() -> None:
                    async for data in server:
                        if self.armed:
                            self.armed = False
                            nursery.cancel_scope.cancel()  # the reply is lost
                            return
                        await client.send_all(data)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(upstream)
                nursery.start_soon(downstream)

        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.url = f"redis://127.0.0.1:{listeners[0].socket.getsockname()[1]}/0"
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, handle, listeners)
            task_status.started()


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


async def test_reads_fetch_fewer_entries_when_entries_are_large(redis_prefix):
    """50 entries of 100 kB and batches of 250 kB: a read takes about a batch's worth,
    not max_events entries (5 MB here), so memory follows bytes, not counts."""
    async with open_test_link(redis_prefix) as (link, start):
        queue = RedisQueue(link, "a")
        await start()
        await queue.put([(f"e{i:02}", b"x" * 100_000) for i in range(50)], 0.0)
        batch = await queue.get_batch(100, 250_000, 0)
        assert [e.event_id for e in batch] == ["e00", "e01"]
        pending = await raw(lambda c: c.xpending(queue.stream, GROUP))
        assert pending.pending <= 3, "entries read from Redis for one batch"
        await queue.ack(batch)
        rest = await take(queue, 48, batch=100)
        assert [e.event_id for e in rest] == [f"e{i:02}" for i in range(2, 50)]


async def test_an_entry_is_dead_lettered_at_most_once(redis_prefix):
    """A claimer and the slow holder both give up on the same entry, or a dead
    letter is written again after its reply was lost: one dead letter."""
    async with (
        open_test_link(redis_prefix, consumer="slow", claim_idle=0.3) as (link_a, start_a),
        open_test_link(redis_prefix, consumer="claimer", claim_idle=0.3) as (link_b, start_b),
    ):
        a, b = RedisQueue(link_a, "s"), RedisQueue(link_b, "s")
        await start_a()
        await start_b()
        await a.put([("poison", b"{}"), ("fine", b"{}")], 0.0)
        held = await a.get_batch(10, 1 << 20, 0)
        link_a.queues.clear()  # no heartbeat: cut off long enough to be claimed
        claimed = await take(b, 2, batch=10, ack=False)
        poison = [e for e in claimed if e.event_id == "poison"]
        assert await b.dead_letter(poison, reason="rejected", attempts=1, status=400) == 1
        # The cut-off holder comes back and gives up on the same entries.
        assert await a.dead_letter(held, reason="retries_exhausted", attempts=9) == 1
        # and "fine", dead-lettered by the holder, is then dead-lettered by nobody else
        assert await b.dead_letter(claimed, reason="rejected", attempts=1) == 0
        letters = await RedisDeadLetters(link_b, "s").list()
        assert sorted((d.event_id, d.reason) for d in letters) == [
            ("fine", "retries_exhausted"),
            ("poison", "rejected"),
        ]
    assert await raw(lambda c: c.xlen(b.stream)) == 0
    assert int(await raw(lambda c: c.get(b.bytes_key))) == 0


async def test_a_requeued_replay_is_counted_once(redis_prefix):
    counted = []
    async with open_test_link(redis_prefix, consumer="staying") as (link_b, start_b):
        b = RedisQueue(link_b, "s")
        b.on_replayed = counted.append
        await start_b()
        async with open_test_link(redis_prefix, consumer="leaving") as (link_a, start_a):
            a = RedisQueue(link_a, "s")
            a.on_replayed = counted.append
            await start_a()
            await a.dead_letter_new([("x", b"{}", "untranslatable")], 0.0)
            assert await RedisDeadLetters(link_a, "s").replay() == 1
            batch = await a.get_batch(10, 1 << 20, 0)
            assert [e.event_id for e in batch] == ["x"] and counted == [1]
            a.release(batch)  # shutdown: given back to the stream for the others
        got = await take(b, 1)
        assert [e.event_id for e in got] == ["x"]
    assert counted == [1]
