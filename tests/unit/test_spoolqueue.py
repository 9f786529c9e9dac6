"""One sink's queue in the spool: the in-memory window, paging in, batches within their bounds."""

from __future__ import annotations

import sqlite3
import time

import pytest
import trio
import trio.lowlevel

from router import spool as spool_module
from router import spoolqueue
from tests.helpers.spools import options, running_spools, take_all


@pytest.fixture
async def opened(tmp_path):
    async with running_spools(tmp_path) as start:
        yield start


async def test_spilled_queue_pages_in_order_while_writers_keep_writing(opened, monkeypatch):
    monkeypatch.setattr(spoolqueue, "HOT_EVENTS", 10)
    monkeypatch.setattr(spoolqueue, "PAGE_EVENTS", 8)
    monkeypatch.setattr(spool_module, "CHUNK_EVENTS", 3)
    spool = await opened()
    queue = spool.queues["a"]
    for i in range(100):
        await queue.put([(f"e{i:03}", b"x")], 0.0)
    assert queue.spilled and queue.statistics()["in_memory"] <= 10
    out = []

    async def writer():
        for i in range(100, 200):
            await queue.put([(f"e{i:03}", b"x")], 0.0)
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        out = await take_all(queue, 200, batch=5)
    ids = [e.event_id for e in out]
    assert ids == sorted(ids) == [f"e{i:03}" for i in range(200)]
    assert queue.pending_events == 0


async def test_rows_paged_in_before_the_writer_reports_them_come_out_once(opened, monkeypatch):
    # The reading connection can see a commit before the writer's report of it
    # reaches the queue; the report must not put those events in memory again.
    monkeypatch.setattr(spoolqueue, "HOT_EVENTS", 4)
    monkeypatch.setattr(spool_module, "CHUNK_EVENTS", 1)
    spool = await opened()
    queue = spool.queues["a"]
    for i in range(6):
        await queue.put([(f"e{i}", b"x")], 0.0)
    assert queue.spilled
    held = []
    report = queue.on_committed
    monkeypatch.setattr(queue, "on_committed", held.append)
    await queue.put([("late", b"x")], 0.0)  # on disk, not yet reported
    monkeypatch.setattr(queue, "on_committed", report)
    first = await take_all(queue, 7)
    assert [e.event_id for e in first] == [*(f"e{i}" for i in range(6)), "late"]
    for entries in held:
        report(entries)
    await queue.put([("after", b"x")], 0.0)
    assert [e.event_id for e in await take_all(queue, 1)] == ["after"]
    assert queue.pending_events == 0 and queue.statistics()["in_memory"] == 0


async def test_a_page_that_stops_inside_an_unreported_commit_reads_the_rest_later(
    opened, monkeypatch
):
    monkeypatch.setattr(spoolqueue, "HOT_EVENTS", 0)  # every put spills
    monkeypatch.setattr(spoolqueue, "PAGE_EVENTS", 2)
    monkeypatch.setattr(spool_module, "CHUNK_EVENTS", 1)
    spool = await opened()
    queue = spool.queues["a"]
    await queue.put([("e0", b"x")], 0.0)
    held = []
    report = queue.on_committed
    monkeypatch.setattr(queue, "on_committed", held.append)
    await queue.put([("l1", b"x"), ("l2", b"x"), ("l3", b"x")], 0.0)  # three rows, one commit
    monkeypatch.setattr(queue, "on_committed", report)
    first = await queue.get_batch(10, 1 << 20, 0)
    assert [e.event_id for e in first] == ["e0", "l1"]  # the page stopped inside the commit
    await queue.ack(first)
    for entries in held:
        report(entries)
    rest = await take_all(queue, 2)
    assert [e.event_id for e in rest] == ["l2", "l3"]
    assert queue.pending_events == 0 and queue.statistics()["in_memory"] == 0


async def test_memory_buffer_keeps_nothing_on_disk_until_closed(opened, tmp_path):
    path = tmp_path / "mem.db"
    spool = await opened(sinks=[("m", options(durable=False))], path=path)
    queue = spool.queues["m"]
    await queue.put([("e1", b"1"), ("e2", b"2"), ("e3", b"3")], 0.0)
    assert sqlite3.connect(path).execute("SELECT count(*) FROM q_1").fetchone() == (0,)
    taken = await queue.get_batch(1, 1 << 20, 0)
    queue.release(taken)  # shutdown while in flight: back in the queue
    await spool.close()
    spool.close_db()
    assert sqlite3.connect(path).execute("SELECT sum(count) FROM q_1").fetchone() == (3,)
    again = await opened(sinks=[("m", options(durable=False))], path=path)
    got = await take_all(again.queues["m"], 3)
    assert sorted(e.event_id for e in got) == ["e1", "e2", "e3"]


async def test_memory_stays_bounded_whatever_the_chunk_sizes(opened, monkeypatch):
    monkeypatch.setattr(spoolqueue, "HOT_EVENTS", 10)
    monkeypatch.setattr(spoolqueue, "PAGE_EVENTS", 20)
    monkeypatch.setattr(spool_module, "CHUNK_EVENTS", 7)
    spool = await opened()
    queue = spool.queues["a"]
    await queue.put([("first", b"x")], 0.0)  # in memory; the rest spills
    await queue.put([(f"e{i:03}", b"x") for i in range(300)], 0.0)  # 43 chunks of <= 7
    assert queue.spilled
    peak = 0
    out = []
    with trio.fail_after(10):
        while len(out) < 301:
            batch = await queue.get_batch(5, 1 << 20, 0)
            peak = max(peak, queue.statistics()["in_memory"] + len(batch))
            out += batch
            await queue.ack(batch)
    assert peak <= 20 + 7
    assert [e.event_id for e in out] == ["first"] + [f"e{i:03}" for i in range(300)]


async def test_large_events_are_paged_in_by_bytes_not_by_count(opened):
    """300 events of 10 kB in one commit, a 50 kB memory budget: memory never holds more
    than the budget plus one chunk (CHUNK_BYTES), and every event comes out in order."""
    spool = await opened(sinks=[("a", options(memory_bytes=50_000))])
    queue = spool.queues["a"]
    event = b"x" * 10_000
    await queue.put([(f"e{i:03}", event) for i in range(300)], 0.0)  # one commit: 3 MB
    assert queue.spilled
    peak = 0
    out = []
    with trio.fail_after(10):
        while len(out) < 300:
            batch = await queue.get_batch(100, 1 << 20, 0)
            peak = max(peak, queue.statistics()["in_memory_bytes"] + len(batch) * len(event))
            out += batch
            await queue.ack(batch)
    assert peak <= 50_000 + spool_module.CHUNK_BYTES
    assert [e.event_id for e in out] == [f"e{i:03}" for i in range(300)]


async def test_a_batch_stops_at_max_bytes_and_a_larger_event_comes_alone(opened):
    spool = await opened()
    queue = spool.queues["a"]
    await queue.put(
        [("big", b"B" * 50), ("s1", b"s" * 10), ("s2", b"s" * 10), ("s3", b"s" * 10)], 0.0
    )
    first = await queue.get_batch(10, 25, 0)
    assert [e.event_id for e in first] == ["big"]  # alone: larger than max_bytes
    second = await queue.get_batch(10, 25, 0)
    assert [e.event_id for e in second] == ["s1", "s2"]  # a third would pass 25 bytes
    assert queue.statistics()["in_memory_bytes"] == 10
    third = await queue.get_batch(10, 25, 0)
    assert [e.event_id for e in third] == ["s3"]
    assert queue.statistics()["in_memory_bytes"] == 0
    await queue.ack(first + second + third)
    assert queue.pending_events == queue.pending_bytes == 0


async def test_dead_letter_counts_and_records_the_failure(opened, tmp_path):
    spool = await opened()
    queue = spool.queues["a"]
    await queue.put([("e1", b"1"), ("e2", b"2")], 5.0)
    batch = await queue.get_batch(10, 1 << 20, 0)
    assert await queue.dead_letter(batch, reason="refused", attempts=2, status=400) == 2
    assert queue.in_flight == queue.pending_events == 0
    rows = sqlite3.connect(tmp_path / "spool.db").execute(
        "SELECT event_id, reason, attempts, status, response, enqueued_at FROM dead_letters"
    )
    assert sorted(rows) == [
        ("e1", "refused", 2, 400, None, 5.0),
        ("e2", "refused", 2, 400, None, 5.0),
    ]


def assert_oldest(queue, enqueued_at: float) -> None:
    """``oldest_age`` is the age of an event enqueued at ``enqueued_at``, by the clock around it."""
    before = time.time()
    age = queue.statistics()["oldest_age"]
    after = time.time()
    assert before - enqueued_at <= age <= after - enqueued_at, (age, enqueued_at)


@pytest.mark.parametrize("durable", [True, False])
async def test_oldest_age_follows_the_head_in_flight_and_in_memory(opened, durable):
    spool = await opened(sinks=[("a", options(durable=durable))])
    queue = spool.queues["a"]
    assert queue.statistics()["oldest_age"] == 0.0
    now = time.time()
    await queue.put([("e1", b"1")], now - 300)
    await queue.put([("e2", b"2"), ("e3", b"3")], now - 200)
    assert_oldest(queue, now - 300)
    first = await queue.get_batch(1, 1 << 20, 0)
    second = await queue.get_batch(1, 1 << 20, 0)
    assert_oldest(queue, now - 300)  # in flight still counts
    await queue.ack(first)
    assert_oldest(queue, now - 200)
    queue.release(second)  # given back: the head of the buffer again
    assert_oldest(queue, now - 200)
    await take_all(queue, 2)
    assert queue.pending_events == 0 and queue.statistics()["oldest_age"] == 0.0


async def test_oldest_age_of_a_spilled_queue_from_open_and_paging(opened, tmp_path, monkeypatch):
    monkeypatch.setattr(spoolqueue, "HOT_EVENTS", 2)
    monkeypatch.setattr(spoolqueue, "PAGE_EVENTS", 2)
    monkeypatch.setattr(spool_module, "CHUNK_EVENTS", 2)
    path = tmp_path / "spilled.db"
    spool = await opened(path=path)
    queue = spool.queues["a"]
    now = time.time()
    for i in range(6):  # 2 in memory, 4 on disk only
        await queue.put([(f"e{i}", b"x")], now - 600 + i * 60)
    assert queue.spilled and queue.statistics()["in_memory"] == 2
    await queue.ack(await queue.get_batch(2, 1 << 20, 0))
    # Nothing in memory: the first spilled event's time.
    assert queue.statistics()["in_memory"] == 0
    assert_oldest(queue, now - 600 + 2 * 60)
    await spool.close()
    spool.close_db()
    # After a restart nothing is read yet: the first row's time, from the database.
    again = (await opened(path=path)).queues["a"]
    assert again.spilled and again.recovered == 4
    assert_oldest(again, now - 600 + 2 * 60)
    page = await again.get_batch(2, 1 << 20, 0)
    assert [e.event_id for e in page] == ["e2", "e3"]
    await again.ack(page)
    # The page is done and the next not read: the last paged-in event's time bounds it.
    assert again.statistics()["in_memory"] == 0
    assert_oldest(again, now - 600 + 3 * 60)
    await take_all(again, 2)
    assert again.statistics()["oldest_age"] == 0.0
