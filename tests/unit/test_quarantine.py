"""The quarantine store: what it keeps, pages, purges, and its storage failures."""

from __future__ import annotations

import pytest

from router.errors import StorageError, StorageUnusable
from router.quarantine import Quarantine, QuarantinedEvent
from tests.helpers.storage_faults import fill, tmpfs


@pytest.fixture
def store(tmp_path):
    store = Quarantine(tmp_path / "quarantine.db")
    yield store
    store.close()


async def test_events_are_kept_as_received_with_their_errors_oldest_first(store):
    await store.add(
        "a", 1000, [({"n": 1}, ["n: must be of string type"]), ([1, 2], ["not an object"])]
    )
    await store.add("b", 2000, [({"n": 3}, [])])
    total, page = await store.list("a")
    assert total == 2
    assert page == [
        QuarantinedEvent(1, "a", 1000, {"n": 1}, ["n: must be of string type"]),
        QuarantinedEvent(2, "a", 1000, [1, 2], ["not an object"]),
    ]
    assert page[0].to_dict() == {
        "id": 1, "source": "a", "received_at": 1000, "event": {"n": 1},
        "errors": ["n: must be of string type"],
    }  # fmt: skip
    assert (await store.list())[0] == 3


async def test_list_pages_with_offset_and_limit_and_counts_the_total(store):
    await store.add("a", 0, [({"i": i}, ["bad"]) for i in range(5)])
    total, page = await store.list("a", offset=1, limit=2)
    assert total == 5
    assert [e.event["i"] for e in page] == [1, 2]


async def test_events_survive_reopening_the_file(tmp_path):
    path = tmp_path / "quarantine.db"
    first = Quarantine(path)
    await first.add("a", 0, [({"kept": True}, ["bad"])])
    first.close()
    again = Quarantine(path, probe=True)
    try:
        assert again.list_sync("a") == (1, [QuarantinedEvent(1, "a", 0, {"kept": True}, ["bad"])])
    finally:
        again.close()


async def test_purge_deletes_one_sources_events_or_all(store):
    await store.add("a", 0, [({}, ["x"])] * 2)
    await store.add("b", 0, [({}, ["x"])])
    assert store.purge_sync("a") == 2
    assert store.list_sync("a")[0] == 0 and store.list_sync("b")[0] == 1
    assert store.purge_sync(None) == 1
    assert store.list_sync(None) == (0, [])


def test_an_in_memory_store_needs_no_file():
    store = Quarantine(None)
    assert store.path == ":memory:"
    store.close()


def test_a_quarantine_that_is_not_sqlite_is_refused(tmp_path):
    path = tmp_path / "quarantine.db"
    path.write_text("not sqlite\n" * 1000)
    with pytest.raises(StorageUnusable, match="empty quarantine, or restore it from a backup"):
        Quarantine(path)


async def test_the_quarantine_reports_a_full_disk_and_its_recovery(tmp_path):
    with tmpfs(tmp_path / "fs", "1m") as fs:
        store = Quarantine(fs / "quarantine.db")
        try:
            filler = fill(fs)
            big = [({"x": "y" * 20_000}, ["bad"])] * 4
            with pytest.raises(StorageError) as caught:
                await store.add("src", 0, big)
            assert str(caught.value).startswith(f"no space left to write {fs}/quarantine.db ")
            assert store.health.error == str(caught.value)
            await store.probe()
            assert store.health.error is not None
            filler.unlink()
            await store.probe()
            assert store.health.error is None
            await store.add("src", 0, big)
            assert (await store.list("src"))[0] == 4
        finally:
            store.close()


async def test_count_is_every_sources_events_on_disk_and_in_memory(tmp_path):
    for path in (tmp_path / "quarantine.db", None):
        quarantine = Quarantine(path)
        try:
            assert await quarantine.count() == 0
            await quarantine.add("a", 0, [({"n": 1}, ["bad"]), ({"n": 2}, ["bad"])])
            await quarantine.add("b", 0, [({"n": 3}, ["bad"])])
            assert await quarantine.count() == 3  # the counting connection sees new writes
            quarantine.purge_sync("a")
            assert await quarantine.count() == 1
        finally:
            quarantine.close()
