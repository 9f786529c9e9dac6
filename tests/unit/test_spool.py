"""The SQLite spool on a real database: group commit, spilling, recovery, dead letters, dedup."""

from __future__ import annotations

import sqlite3

import pytest
import trio
import trio.lowlevel
import trio.testing

from router import spool as spool_module
from router.deadletters import DeadLetters
from router.spool import StorageError
from tests.helpers.spools import options, running_spools, take_all


@pytest.fixture
async def opened(tmp_path):
    async with running_spools(tmp_path) as start:
        yield start


async def test_group_commit_shares_one_transaction(opened, monkeypatch):
    spool = await opened()
    queue = spool.queues["a"]
    commits = []
    real = spool._commit
    monkeypatch.setattr(spool, "_commit", lambda write: commits.append(1) or real(write))
    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(queue.put, [(f"e{i}", b"{}")], 0.0)
    assert queue.pending_events == 20
    assert len(commits) < 20  # concurrent puts were grouped
    got = await take_all(queue, 20)
    assert sorted(e.event_id for e in got) == sorted(f"e{i}" for i in range(20))


async def test_pending_events_survive_a_restart_in_order(opened, tmp_path):
    spool = await opened(path=tmp_path / "one.db")
    queue = spool.queues["a"]
    # Three commits, so three chunks (rows): e0-e2, e3-e4, e5-e9.
    for ids in (range(3), range(3, 5), range(5, 10)):
        await queue.put([(f"e{i}", b"p" * i) for i in ids], 0.0)
    first = await queue.get_batch(3, 1 << 20, 0)
    await queue.ack(first)  # the whole first chunk: its row is deleted
    in_flight = await queue.get_batch(2, 1 << 20, 0)  # taken, never acked: a crash
    assert [e.event_id for e in in_flight] == ["e3", "e4"]
    await spool.close()
    spool.close_db()

    again = await opened(path=tmp_path / "one.db")
    queue = again.queues["a"]
    assert queue.recovered == queue.pending_events == 7
    assert queue.pending_bytes == sum(range(3, 10))
    got = await take_all(queue, 7)
    assert [e.event_id for e in got] == [f"e{i}" for i in range(3, 10)]


async def test_a_partly_delivered_chunk_comes_back_without_its_settled_events(opened, tmp_path):
    """A chunk's row goes when all of its events are done; those done before are
    recorded as settled (with the next commit), so a restart sends only the rest."""
    spool = await opened(path=tmp_path / "two.db")
    queue = spool.queues["a"]
    await queue.put([(f"e{i}", b"x") for i in range(4)], 0.0)  # one chunk
    await queue.ack(await queue.get_batch(3, 1 << 20, 0))
    assert queue.pending_events == 1
    await spool.close()
    spool.close_db()

    again = await opened(path=tmp_path / "two.db")
    queue = again.queues["a"]
    assert queue.recovered == 1 and queue.pending_bytes == 1
    got = await take_all(queue, 1)
    assert [e.event_id for e in got] == ["e3"]
    db = sqlite3.connect(tmp_path / "two.db")
    assert db.execute("SELECT count(*) FROM q_1").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM settled").fetchone() == (0,)


async def test_settled_events_reach_the_disk_before_any_close(opened, tmp_path):
    """What a crash (no close) finds: the events delivered out of a pending chunk."""
    spool = await opened(path=tmp_path / "crash.db")
    queue = spool.queues["a"]
    await queue.put([(f"e{i}", b"x") for i in range(4)], 0.0)
    await queue.ack(await queue.get_batch(3, 1 << 20, 0))
    db = sqlite3.connect(tmp_path / "crash.db")
    query = "SELECT seq, event_id FROM settled ORDER BY event_id"
    with trio.fail_after(10):
        while not db.execute(query).fetchall():  # noqa: ASYNC110 - another connection writes
            await trio.sleep(0.01)
    assert db.execute(query).fetchall() == [(1, "e0"), (1, "e1"), (1, "e2")]


async def test_a_chunk_finished_within_the_flush_delay_writes_no_settled_rows(
    opened, tmp_path, monkeypatch
):
    monkeypatch.setattr(spool_module, "SETTLED_FLUSH", 3600.0)
    spool = await opened(path=tmp_path / "s.db")
    queue = spool.queues["a"]
    await queue.put([(f"e{i}", b"x") for i in range(4)], 0.0)
    await queue.ack(await queue.get_batch(3, 1 << 20, 0))
    await queue.put([("other", b"y")], 0.0)  # a commit meanwhile: the rows are not due
    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("SELECT count(*) FROM settled").fetchone() == (0,)
    await queue.ack(await queue.get_batch(1, 1 << 20, 0))  # the chunk's last event
    await spool.close()  # a close writes what is due, and these are no longer anything
    assert db.execute("SELECT count(*) FROM settled").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM q_1").fetchone() == (1,)  # "other" only


async def test_close_writes_the_settled_rows_not_yet_due(opened, tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "SETTLED_FLUSH", 3600.0)
    spool = await opened(path=tmp_path / "c.db")
    queue = spool.queues["a"]
    await queue.put([(f"e{i}", b"x") for i in range(4)], 0.0)
    await queue.ack(await queue.get_batch(3, 1 << 20, 0))
    await spool.close()
    spool.close_db()
    again = await opened(path=tmp_path / "c.db")
    assert again.queues["a"].pending_events == 1
    assert [e.event_id for e in await take_all(again.queues["a"], 1)] == ["e3"]


async def test_dead_letters_leave_the_queue_with_their_reason(opened, tmp_path):
    spool = await opened()
    queue = spool.queues["a"]
    await queue.put([("ok", b"1"), ("bad", b"2")], 0.0)
    batch = await queue.get_batch(2, 1 << 20, 0)
    await queue.ack(batch[:1])
    await queue.dead_letter(batch[1:], reason="rejected", attempts=3, status=400, response="no")
    await queue.dead_letter_new([("never", b"3", "untranslatable: x")], 0.0)
    assert queue.pending_events == 0
    with DeadLetters(tmp_path) as dlq:
        letters = dlq.list("a")
        assert [(d.event_id, d.reason, d.attempts, d.status, d.response) for d in letters] == [
            ("bad", "rejected", 3, 400, "no"),
            ("never", "untranslatable: x", 0, None, None),
        ]
        assert dlq.sinks() == {"a": 2}
    rows = sqlite3.connect(tmp_path / "spool.db").execute("SELECT count(*) FROM q_1").fetchone()
    assert rows == (0,)


async def test_replay_from_another_process_is_noticed(opened, tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "WATCH_INTERVAL", 0.05)
    spool = await opened()
    queue = spool.queues["a"]
    await queue.put([("x", b"1")], 0.0)
    await queue.dead_letter(await queue.get_batch(1, 1 << 20, 0), reason="rejected", attempts=1)
    replayed = []
    queue.on_replayed = replayed.append
    with DeadLetters(tmp_path) as dlq:
        assert dlq.replay("a") == 1
    got = await take_all(queue, 1)
    assert [e.event_id for e in got] == ["x"] and replayed == [1]


async def test_dedup_skips_repeated_ids_within_the_window(opened):
    spool = await opened(sinks=[("d", options(dedup_window=3600))])
    queue = spool.queues["d"]
    assert await queue.put([("a", b"1"), ("b", b"2")], 0.0) == 2
    assert await queue.put([("b", b"2"), ("c", b"3")], 0.0) == 1
    got = await take_all(queue, 3)
    assert [e.event_id for e in got] == ["a", "b", "c"]


async def test_a_full_disk_fails_the_write_and_the_client_is_not_acknowledged(opened, tmp_path):
    spool = await opened()
    queue = spool.queues["a"]
    await queue.put([("small", b"x")], 0.0)
    spool._db.execute("PRAGMA max_page_count = 1")  # SQLite's own "disk full"
    with pytest.raises(StorageError, match="full"):
        await queue.put([(f"big{i}", b"y" * 10_000) for i in range(20)], 0.0)
    assert queue.pending_events == 1  # nothing half-counted
    spool._db.execute("PRAGMA max_page_count = 1073741823")
    await queue.put([("after", b"z")], 0.0)
    got = await take_all(queue, 2)
    assert [e.event_id for e in got] == ["small", "after"]


async def test_bounds(opened):
    spool = await opened(sinks=[("b", options(max_events=5, max_bytes=100))])
    queue = spool.queues["b"]
    assert not queue.full(5, 100)
    assert queue.full(6, 1) and queue.full(1, 101)
    await queue.put([("e", b"x" * 60)], 0.0)
    assert queue.full(1, 41) and not queue.full(1, 40)


async def test_a_payload_with_a_raw_newline_is_refused_not_stored(opened):
    spool = await opened()
    queue = spool.queues["a"]
    with pytest.raises(StorageError, match="without raw newlines"):
        await queue.put([("ok", b"{}"), ("bad", b'{"a":\n1}')], 0.0)
    assert queue.pending_events == 0
    await queue.put([("after", b"{}")], 0.0)
    assert [e.event_id for e in await take_all(queue, 1)] == ["after"]


async def test_rows_are_cut_at_chunk_bytes_and_a_larger_event_is_a_row_alone(opened):
    spool = await opened()
    queue = spool.queues["a"]
    small, large = b"s" * 300_000, b"L" * (spool_module.CHUNK_BYTES + 1)
    await queue.put([("a", small), ("b", small), ("c", small), ("d", large), ("e", small)], 0.0)
    rows = spool._rdb.execute(f"SELECT count, length(payloads) FROM q_{queue.sink_id}").fetchall()
    assert [count for count, _ in rows] == [3, 1, 1]
    assert all(size <= spool_module.CHUNK_BYTES for count, size in rows if count > 1)
    got = await take_all(queue, 5)
    assert [(e.event_id, len(e.payload)) for e in got] == [
        ("a", 300_000),
        ("b", 300_000),
        ("c", 300_000),
        ("d", spool_module.CHUNK_BYTES + 1),
        ("e", 300_000),
    ]


async def test_add_opens_a_queue_for_a_new_sink_while_running_and_keeps_the_others(opened):
    spool = await opened()
    first = spool.queues["a"]
    await first.put([("e1", b"{}")], 0.0)
    await spool.add([("a", options()), ("b", options())])
    assert spool.queues["a"] is first and first.pending_events == 1
    await spool.queues["b"].put([("f1", b"{}"), ("f2", b"{}")], 0.0)
    assert [e.event_id for e in await take_all(spool.queues["b"], 2)] == ["f1", "f2"]
    assert [e.event_id for e in await take_all(first, 1)] == ["e1"]


async def test_a_released_batch_wakes_a_worker_waiting_for_events(opened):
    spool = await opened()
    queue = spool.queues["a"]
    await queue.put([("e1", b"{}")], 0.0)
    taken = await queue.get_batch(10, 1 << 20, 0)
    got = []

    async def waiter():
        got.extend(await queue.get_batch(10, 1 << 20, 0))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        queue.release(taken)  # a parked runner gives its batch back
        with trio.fail_after(5):
            while not got:  # noqa: ASYNC110
                await trio.sleep(0.01)
    assert [e.event_id for e in got] == ["e1"]


# -- server.delivery: process: an ingest spool and a delivery spool on one file ---------


async def wait_until(condition, within: float = 10) -> None:
    with trio.fail_after(within):
        while not condition():  # noqa: ASYNC110 (another spool changes it)
            await trio.sleep(0.01)


async def test_the_delivery_spool_hands_out_what_the_ingest_spool_stores(opened, monkeypatch):
    monkeypatch.setattr(spool_module, "HANDOFF_INTERVAL", 0.01)
    monkeypatch.setattr(spool_module, "RESYNC_INTERVAL", 0.02)
    ingest = await opened(sinks=[("a", options(max_events=300))], role="ingest")
    delivery = await opened(role="delivery")
    writer, reader = ingest.queues["a"], delivery.queues["a"]
    for i in range(30):
        await writer.put([(f"e{i}-{j}", b'{"n":%d}' % j) for j in range(10)], 1000.0 + i)
    # The ingest side keeps none of them in memory: it counts them, for its bounds.
    assert writer.pending_events == 300 and writer.statistics()["in_memory_bytes"] == 0
    assert writer.full(1) and writer.statistics()["oldest_age"] > 0
    got = await take_all(reader, 300, batch=64)
    assert [e.event_id for e in got] == [f"e{i}-{j}" for i in range(30) for j in range(10)]
    assert (reader.pending_events, reader.pending_bytes) == (0, 0)
    # The deletes reach the ingest side through the database: its bound opens again.
    await wait_until(lambda: writer.pending_events == 0)
    assert writer.pending_bytes == 0 and not writer.full(300)
    assert writer.statistics()["oldest_age"] == 0


async def test_the_ingest_count_is_exact_while_the_other_side_delivers(opened, monkeypatch):
    monkeypatch.setattr(spool_module, "HANDOFF_INTERVAL", 0.005)
    monkeypatch.setattr(spool_module, "RESYNC_INTERVAL", 0.003)
    ingest = await opened(role="ingest")
    delivery = await opened(role="delivery")
    writer, reader = ingest.queues["a"], delivery.queues["a"]
    stored = 0
    samples = []

    async def write(n: int) -> None:
        nonlocal stored
        for i in range(40):
            await writer.put([(f"w{n}-{i}-{j}", b"{}") for j in range(5)], 0.0)
            stored += 5
            samples.append((writer.pending_events, stored))

    async with trio.open_nursery() as nursery:
        for n in range(5):
            nursery.start_soon(write, n)
        got = await take_all(reader, 1000, batch=50)
    assert len({e.event_id for e in got}) == 1000
    assert all(0 <= pending <= 1000 for pending, _ in samples)
    await wait_until(lambda: (writer.pending_events, writer.pending_bytes) == (0, 0))


async def test_a_delivery_spool_opened_later_starts_with_what_is_pending(opened, tmp_path):
    ingest = await opened(role="ingest")
    await ingest.queues["a"].put([("old", b"1")], 5.0)
    delivery = await opened(role="delivery")
    reader = delivery.queues["a"]
    assert reader.pending_events == 1
    assert [e.event_id for e in await take_all(reader, 1)] == ["old"]
