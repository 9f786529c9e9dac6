"""The spool's tables and statements on a real SQLite file, without the writer task."""

from __future__ import annotations

import pytest

from router import spooldb
from router.spooldb import Write


@pytest.fixture
def db(tmp_path):
    db = spooldb.connect(tmp_path / "spool.db")
    yield db
    db.close()


def test_chunks_cut_by_events_and_by_bytes_and_a_larger_row_is_alone():
    small = [(f"e{i}", b"x", 0.0) for i in range(7)]
    assert [len(c) for c in spooldb.chunks(small, 3, 100)] == [3, 3, 1]
    rows = [("a", b"1" * 4, 0.0), ("b", b"2" * 4, 0.0), ("c", b"3" * 20, 0.0), ("d", b"4", 0.0)]
    assert [[r[0] for r in c] for c in spooldb.chunks(rows, 10, 10)] == [["a", "b"], ["c"], ["d"]]


def test_a_commit_reads_back_as_pages_without_settled_events(db):
    (sink_id,) = spooldb.sink_ids(db, ["a"]).values()
    rows = [(f"e{i}", b"p%d" % i, 1.0) for i in range(5)]
    committed, skipped = spooldb.commit(
        db, Write(inserts={sink_id: rows}), chunk_events=2, chunk_bytes=1 << 20
    )
    assert skipped == {}
    entries = committed[sink_id]
    assert [e.seq for e in entries] == [1, 1, 2, 2, 3]
    assert spooldb.pending_counts(db, sink_id) == (5, 10, 3)
    spooldb.commit(db, Write(settled={sink_id: [(1, "e0", 2)]}), chunk_events=2, chunk_bytes=1)
    pages = spooldb.read_page(db, sink_id, 0, 3, 1 << 20)
    assert [(seq, count, [e.event_id for e in got]) for seq, count, got in pages] == [
        (1, 1, ["e1"]),
        (2, 2, ["e2", "e3"]),
    ]
    assert spooldb.pending_counts(db, sink_id) == (4, 8, 3)
    spooldb.commit(db, Write(deletes={sink_id: [1, 2]}), chunk_events=2, chunk_bytes=1)
    assert spooldb.pending_counts(db, sink_id) == (1, 2, 3)  # the highest seq stays


def test_dedup_skips_an_id_seen_within_the_window(db):
    (sink_id,) = spooldb.sink_ids(db, ["a"]).values()
    write = Write(inserts={sink_id: [("x", b"1", 0.0), ("y", b"2", 0.0)]}, dedup={sink_id: 60.0})
    spooldb.commit(db, write, chunk_events=10, chunk_bytes=1 << 20)
    again = Write(inserts={sink_id: [("x", b"1", 0.0), ("z", b"3", 0.0)]}, dedup={sink_id: 60.0})
    committed, skipped = spooldb.commit(db, again, chunk_events=10, chunk_bytes=1 << 20)
    assert skipped == {sink_id: {"x"}}
    assert [e.event_id for e in committed[sink_id]] == ["z"]


def test_a_failed_commit_leaves_nothing(db):
    (sink_id,) = spooldb.sink_ids(db, ["a"]).values()
    bad = Write(inserts={sink_id: [("a", b"1", 0.0), ("b", b"raw\nline", 0.0)]})
    with pytest.raises(ValueError, match="newlines"):
        spooldb.commit(db, bad, chunk_events=10, chunk_bytes=1 << 20)
    assert not db.in_transaction
    assert spooldb.pending_counts(db, sink_id) == (0, 0, 0)


def test_scan_foreign_counts_only_rows_that_are_not_own(db):
    (sink_id,) = spooldb.sink_ids(db, ["a"]).values()
    assert spooldb.scan_foreign(db, sink_id, 0, ()) is None
    mine, _ = spooldb.commit(
        db, Write(inserts={sink_id: [("m", b"11", 0.0)]}), chunk_events=10, chunk_bytes=1 << 20
    )
    spooldb.commit(
        db,
        Write(inserts={sink_id: [("f1", b"1", 0.0), ("f2", b"22", 0.0)]}),
        chunk_events=10,
        chunk_bytes=1 << 20,
    )
    own = [e.seq for e in mine[sink_id]]
    assert spooldb.scan_foreign(db, sink_id, 0, own) == (2, 2, 3)
    assert spooldb.scan_foreign(db, sink_id, 0, [1, 2]) == (2, 0, 0)
    assert spooldb.scan_foreign(db, sink_id, 2, ()) is None


def test_merge_adds_every_kind_of_work():
    into = Write(inserts={1: [("a", b"", 0.0)]}, deletes={1: [3]})
    spooldb.merge(
        into,
        Write(
            inserts={1: [("b", b"", 0.0)]},
            deletes={2: [4]},
            dead=[("d",)],
            dedup={1: 5.0},
            settled={1: [(3, "x", 1)]},
        ),
    )
    assert [r[0] for r in into.inserts[1]] == ["a", "b"]
    assert into.deletes == {1: [3], 2: [4]}
    assert into.dead == [("d",)] and into.dedup == {1: 5.0} and into.settled == {1: [(3, "x", 1)]}


def test_the_oldest_enqueue_time_is_the_first_pending_chunks(db):
    (sink_id,) = spooldb.sink_ids(db, ["a"]).values()
    assert spooldb.oldest_enqueued_at(db, sink_id) is None
    for at in (5.0, 7.0):
        rows = [(f"e{at}", b"1", at)]
        spooldb.commit(db, Write(inserts={sink_id: rows}), chunk_events=10, chunk_bytes=1 << 20)
    assert spooldb.oldest_enqueued_at(db, sink_id) == 5.0
    spooldb.commit(db, Write(deletes={sink_id: [1]}), chunk_events=10, chunk_bytes=1)
    assert spooldb.oldest_enqueued_at(db, sink_id) == 7.0
