"""RedisQueue on the suite's real Redis: order, ack, claims, dead letters, dedup, errors."""

from __future__ import annotations

import contextlib
import time
from contextlib import asynccontextmanager

import coredis
import pytest
import trio
import trio.testing
from coredis.exceptions import ResponseError
from coredis.tokens import PureToken
from structlog.testing import capture_logs

from router.redisqueue import GROUP, RedisDeadLetters, RedisQueue
from router.spool import StorageError
from router.testing.redis import REDIS_URL, RedisServer, open_test_link
from tests.helpers.redisqueues import ReplyDroppingProxy, raw, take

pytestmark = pytest.mark.redis


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


def assert_oldest(queue, enqueued_at: float) -> None:
    """``oldest_age`` is the age of an event enqueued at ``enqueued_at``, by the clock around it."""
    before = time.time()
    age = queue.statistics()["oldest_age"]
    after = time.time()
    assert before - enqueued_at <= age <= after - enqueued_at, (age, enqueued_at)


async def test_oldest_age_is_the_shared_streams_first_entry(redis_prefix):
    async with (
        open_test_link(redis_prefix, consumer="one") as (link_a, start_a),
        open_test_link(redis_prefix, consumer="two") as (link_b, start_b),
    ):
        a, b = RedisQueue(link_a, "s"), RedisQueue(link_b, "s")
        await start_a()
        await start_b()
        assert a.statistics()["oldest_age"] == 0.0
        now = time.time()
        await a.put([("e1", b"{}")], now - 300)
        assert_oldest(a, now - 300)  # its own put into an empty stream, before any refresh
        await a.put([("e2", b"{}"), ("e3", b"{}")], now - 200)
        await b.upkeep()
        assert_oldest(b, now - 300)  # the other daemon's, read from Redis
        first = await a.get_batch(1, 1 << 20, 0)
        await a.upkeep()
        assert_oldest(a, now - 300)  # in flight: still in the stream
        await a.ack(first)
        await a.upkeep()
        assert_oldest(a, now - 200)
        await take(a, 2)
        assert a.statistics()["oldest_age"] == 0.0  # at once: nothing pending
        await b.upkeep()
        assert b.pending_events == 0 and b.statistics()["oldest_age"] == 0.0


async def script_calls(link, queue) -> int:
    """Put calls so far: each leaves its token key (kept an hour), under this test's prefix."""
    pattern = link.key(queue.name, "put", "*")

    async def count(client) -> int:
        return len([key async for key in client.scan_iter(match=pattern)])

    return await raw(count)


async def test_concurrent_puts_share_one_script_call_and_keep_their_own_counts(redis_prefix):
    async with open_test_link(redis_prefix) as (link, start):
        queue = RedisQueue(link, "g", dedup_window=60)
        await start()
        await queue.put([("warm", b"0")], 1.0)  # the group and the script exist
        results: dict[int, int] = {}
        before = await script_calls(link, queue)

        async def put(i: int) -> None:
            # Every put repeats "dup" (only the first stored) and has two of its own.
            entries = [("dup", b"d"), (f"{i}-a", b"aa"), (f"{i}-b", b"bbb")]
            results[i] = await queue.put(entries, 2.0 + i)

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(put, i)
        calls = await script_calls(link, queue) - before
        assert sorted(results.values()) == [2] * 19 + [3]
        # The first put goes alone; the 19 that came while it was on its way go together.
        assert calls == 2
        got = await take(queue, 1 + 41)
        ids = [e.event_id for e in got]
        assert len(ids) == len(set(ids)) == 42 and ids.count("dup") == 1
        # Each event keeps its own put's enqueue time.
        assert {e.enqueued_at for e in got if e.event_id == "7-a"} == {9.0}
        assert queue.pending_events == 0


async def test_a_failed_group_fails_every_put_in_it(tmp_path):
    async with open_test_link("nowhere", url="redis://127.0.0.1:9/0", connect_timeout=0.5) as (
        link,
        start,
    ):
        queue = RedisQueue(link, "s")
        await start()
        errors: list[BaseException] = []

        async def put(i: int) -> None:
            try:
                await queue.put([(f"e{i}", b"{}")], 0.0)
            except StorageError as exc:
                errors.append(exc)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for i in range(10):
                    nursery.start_soon(put, i)
    assert len(errors) == 10 and len({id(e) for e in errors}) == 10
    assert queue.pending_events == 0


async def test_entries_are_read_whatever_the_order_of_their_fields(redis_prefix):
    """Entries written by the queue are read by position; any other by field name."""
    async with open_test_link(redis_prefix) as (link, start):
        queue = RedisQueue(link, "f")
        replayed: list[int] = []
        queue.on_replayed = replayed.append
        await start()
        await queue.put([("ours", b"1")], 3.5)
        await raw(lambda c: c.xadd(queue.stream, {"t": "4.5", "r": "1", "p": b"2", "e": "theirs"}))
        await raw(lambda c: c.xadd(queue.stream, {"e": "bare", "p": b"3"}))
        got = await take(queue, 3)
        assert [(e.event_id, e.payload, e.enqueued_at) for e in got] == [
            ("ours", b"1", 3.5),
            ("theirs", b"2", 4.5),
            ("bare", b"3", 0.0),
        ]
        assert replayed == [1]  # "theirs" carries the replay mark


@asynccontextmanager
async def private_queue(tmp_path, **options):
    """A queue on a redis-server of its own (the tests kill its clients), and a raw client."""
    server = RedisServer(tmp_path / "redis")
    async with (
        server.running(),
        coredis.Redis.from_url(server.url) as admin,
        open_test_link(
            "p", url=server.url, refresh_interval=60, reconnect_initial_backoff=0.05,
            reconnect_max_backoff=0.05, **options,
        ) as (link, start),
    ):  # fmt: skip
        queue = RedisQueue(link, "s")
        await start()
        yield queue, admin


async def take_batches(queue, workers: int, size: int) -> list[list]:
    """Put ``workers * size`` entries, plus 5 left in the stream, and take one batch per worker."""
    await queue.put([(f"w{i}", b"x" * i) for i in range(workers * size)], 0.0)
    batches = [await queue.get_batch(size, 1 << 20, 0) for _ in range(workers)]
    await queue.put([(f"left{i}", b"yy") for i in range(5)], 0.0)
    assert [len(b) for b in batches] == [size] * workers
    return batches


async def assert_only_the_rest_is_left(queue, admin) -> None:
    """Redis holds the 5 entries never taken, none pending; the queue's counts say so."""
    left = await admin.xrange(queue.stream)
    assert [e.field_values[b"e"] for e in left] == [f"left{i}".encode() for i in range(5)]
    assert (await admin.xpending(queue.stream, GROUP)).pending == 0
    assert int(await admin.get(queue.bytes_key)) == 10
    assert (queue.pending_events, queue.pending_bytes) == (5, 10)
    assert queue.in_flight == 0


async def kill_clients(admin) -> None:
    """Close every connection of the queue's link (only the test's own survives)."""
    await admin.client_kill(type_=PureToken.NORMAL, skipme=True)


async def test_concurrent_acks_whose_calls_are_cut_off_are_written_once_redis_answers(
    tmp_path,
):
    """Writes paused, the link's connections killed twice under eight workers' acks on
    their way: each ack returns only once Redis wrote it, and the counts are exact."""
    async with private_queue(tmp_path) as (queue, admin):
        batches = await take_batches(queue, 8, 10)
        finished = []

        async def ack(batch) -> None:
            await queue.ack(batch)
            finished.append(batch)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                await admin.client_pause(60_000, PureToken.WRITE)
                for batch in batches:
                    nursery.start_soon(ack, batch)
                for _ in range(2):
                    await trio.testing.wait_all_tasks_blocked(0.2)  # a call waits in Redis
                    assert not finished
                    await kill_clients(admin)
                await trio.testing.wait_all_tasks_blocked(0.2)
                await admin.client_unpause()
        assert len(finished) == 8
        await assert_only_the_rest_is_left(queue, admin)  # the calls cut off never ran


async def test_an_ack_whose_reply_is_lost_is_counted_once(tmp_path, redis_prefix):
    """Acks from eight workers; a call runs and its reply is lost: its retry finds those
    entries gone and does not count them again."""
    proxy = ReplyDroppingProxy()
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        async with open_test_link(
            redis_prefix, url=proxy.url, refresh_interval=60, reconnect_initial_backoff=0.05,
            reconnect_max_backoff=0.05,
        ) as (link, start):  # fmt: skip
            queue = RedisQueue(link, "s")
            await start()
            batches = await take_batches(queue, 8, 10)
            proxy.armed = True
            with trio.fail_after(10):
                async with trio.open_nursery() as acks:
                    for batch in batches:
                        acks.start_soon(queue.ack, batch)
            assert not proxy.armed  # a reply was lost
            async with coredis.Redis.from_url(REDIS_URL) as admin:
                left = await admin.xrange(queue.stream)
                assert [e.field_values[b"e"] for e in left] == [
                    f"left{i}".encode() for i in range(5)
                ]
                assert (await admin.xpending(queue.stream, GROUP)).pending == 0
            # Not below the truth: what a lost reply deleted is still counted until a refresh.
            assert queue.pending_events >= 15 and queue.in_flight == 0
            await queue.upkeep()
            assert (queue.pending_events, queue.pending_bytes) == (5, 10)
        nursery.cancel_scope.cancel()


async def test_acks_are_retried_while_redis_answers_their_call_with_an_error(tmp_path):
    """Another client's script keeps Redis busy (it answers BUSY to anything else): the
    acks' calls fail and are retried, and none returns before Redis wrote it."""
    async with private_queue(tmp_path) as (queue, admin):
        batches = await take_batches(queue, 8, 10)
        await admin.config_set({"busy-reply-threshold": "10"})
        finished = []

        async def ack(batch) -> None:
            await queue.ack(batch)
            finished.append(batch)

        async def busy() -> None:
            async with coredis.Redis.from_url(queue.link.config.url) as other:
                with contextlib.suppress(ResponseError):  # killed
                    await other.eval("while true do end", [], [])

        def failed_acks() -> int:
            return sum(1 for e in logs if e["event"] == "redis.command_failed")

        with capture_logs() as logs, trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(busy)
                while True:  # until Redis is busy
                    try:
                        await admin.ping()
                    except ResponseError:
                        break
                    await trio.sleep(0.01)
                for batch in batches:
                    nursery.start_soon(ack, batch)
                while failed_acks() < 16:  # noqa: ASYNC110  each ack's call, then a retry
                    await trio.sleep(0.01)
                assert not finished
                await admin.script_kill()
        assert len(finished) == 8
        assert {e.get("operation") for e in logs if e["event"] == "redis.command_failed"} == {"ack"}
        await assert_only_the_rest_is_left(queue, admin)


async def test_an_ack_cancelled_on_its_way_leaves_its_entries_acked_or_pending(tmp_path):
    """One worker's ack is cancelled (its runner stops) while its call waits in Redis and
    seven others wait too: theirs are written; its own are either written or still
    pending (delivered again), and the counts match Redis after a refresh."""
    async with private_queue(tmp_path) as (queue, admin):
        first, *others = await take_batches(queue, 8, 10)
        finished = []
        cancelled = trio.CancelScope()

        async def ack(batch, scope: trio.CancelScope | None = None) -> None:
            with scope or trio.CancelScope():
                await queue.ack(batch)
                finished.append(batch)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                await admin.client_pause(60_000, PureToken.WRITE)
                nursery.start_soon(ack, first, cancelled)
                await trio.testing.wait_all_tasks_blocked(0.2)  # its call waits in Redis
                for batch in others:
                    nursery.start_soon(ack, batch)
                await trio.testing.wait_all_tasks_blocked(0.2)
                cancelled.cancel()
                await trio.testing.wait_all_tasks_blocked(0.2)
                await admin.client_unpause()
        assert sorted(map(id, finished)) == sorted(map(id, others))
        rest = [f"left{i}".encode() for i in range(5)]
        left = [e.field_values[b"e"] for e in await admin.xrange(queue.stream)]
        assert left in (rest, [e.event_id.encode() for e in first] + rest)
        assert (await admin.xpending(queue.stream, GROUP)).pending == len(left) - 5
        await queue.upkeep()
        assert queue.pending_events == len(left) and queue.in_flight == 0


async def test_entries_whose_ack_is_still_being_retried_are_not_claimed_again(redis_prefix):
    """Redis is away while a batch's ack is retried: past claim_idle, the queue's own
    claim must not hand out those delivered entries a second time."""
    async with open_test_link(redis_prefix, consumer="solo", claim_idle=0.2) as (link, start):
        queue = RedisQueue(link, "s")
        await start()
        await queue.put([("a", b"{}"), ("b", b"{}")], 0.0)
        batch = await queue.get_batch(10, 1 << 20, 0)
        assert [e.event_id for e in batch] == ["a", "b"]
        redis_back = trio.Event()
        real = queue._retrying

        async def ack_waits_for_redis(operation, fn):
            if operation == "ack":
                await redis_back.wait()
            return await real(operation, fn)

        queue._retrying = ack_waits_for_redis
        async with trio.open_nursery() as nursery:
            nursery.start_soon(queue.ack, batch)
            await trio.sleep(0.5)  # idle for longer than claim_idle
            with trio.move_on_after(1):
                again = await queue.get_batch(10, 1 << 20, 0.05)
                pytest.fail(f"handed out again: {[e.event_id for e in again]}")
            redis_back.set()
        assert await raw(lambda c: c.xlen(queue.stream)) == 0
        assert queue.pending_events == 0 and queue.in_flight == 0


async def test_a_payload_with_a_raw_newline_is_refused_and_the_others_are_stored(redis_prefix):
    """Each put's payloads go to Redis as one newline-joined argument: a payload that
    holds a raw newline (no JSON writer makes one) is refused, alone."""
    async with open_test_link(redis_prefix) as (link, start):
        queue = RedisQueue(link, "s")
        await start()
        with pytest.raises(ValueError, match="raw newlines"):
            await queue.put([("bad", b'{"a":\n1}')], 0.0)
        with pytest.raises(ValueError, match="newline"):
            await queue.put([("two\nlines", b"{}")], 0.0)
        assert await queue.put([("x", b'{"t":"a\\nb"}'), ("y", b"{}")], 0.0) == 2
        got = await take(queue, 2)
        assert [(e.event_id, e.payload) for e in got] == [("x", b'{"t":"a\\nb"}'), ("y", b"{}")]
