"""Storage failures on real files and a real full tmpfs (the quarantine's: test_quarantine.py)."""

from __future__ import annotations

import errno
import os
import sqlite3

import pytest
import trio

from router import spool as spool_module
from router.errors import DataDirLocked, StorageError, StorageUnusable
from router.spool import Spool
from router.storage import describe, lock_data_dir
from tests.helpers.storage_faults import fill, tmpfs

SINKS = [("a", {"durable": True})]


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "no space left to write d/x.db "),
        (OSError(errno.EROFS, "Read-only file system"), "d/x.db is on a read-only file system"),
        (OSError(errno.EIO, "Input/output error"), "cannot use d/x.db (Input/output error)"),
    ],
)
def test_describe_names_the_file_the_cause_and_the_fix(error, says):
    line = describe("d/x.db", error, what="spool")
    assert line.startswith(says)
    assert line.endswith("point server.data_dir (--data-dir) elsewhere")
    assert "\n" not in line


async def test_a_spool_that_is_not_sqlite_is_refused_at_open(tmp_path):
    path = tmp_path / "spool.db"
    path.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(StorageUnusable) as caught:
        await Spool(path).open(SINKS)
    assert caught.value.path == str(path)
    assert str(caught.value) == (
        f"{path} is not a SQLite database (file is not a database): move it aside to start "
        "with an empty spool, or restore it from a backup"
    )


def test_the_data_dir_lock_names_a_data_dir_that_is_a_file(tmp_path):
    (tmp_path / "data").write_text("")
    locked = lock_data_dir(tmp_path / "data")
    with pytest.raises(StorageUnusable, match=r"data directory .*/data is a file, not a dir"):
        locked.__enter__()


async def test_acks_wait_out_a_full_disk_and_land_once_it_has_room(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "PROBE_INTERVAL", 0.05)
    with tmpfs(tmp_path / "fs", "1m") as fs:
        spool = Spool(fs / "spool.db")
        await spool.open(SINKS)
        queue = spool.queues["a"]
        async with trio.open_nursery() as nursery:
            await nursery.start(spool.run)
            await queue.put([("e1", b"{}"), ("e2", b"{}")], 0.0)
            batch = await queue.get_batch(10, 1 << 20, 0)
            filler = fill(fs)
            acked = trio.Event()

            async def ack() -> None:
                await queue.ack(batch)  # must neither raise nor give up
                acked.set()

            nursery.start_soon(ack)
            with pytest.raises(StorageError, match="no space left to write"):
                await queue.put([("e3", b"{}")], 0.0)  # ingest fails fast: a 503
            assert spool.health.error.startswith(f"no space left to write {fs}/spool.db ")
            assert not acked.is_set()
            filler.unlink()
            with trio.fail_after(10):
                await acked.wait()  # no new traffic: the writer retried on its own
            assert spool.health.error is None
            await spool.close()
            nursery.cancel_scope.cancel()
        (rows,) = spool._db.execute("SELECT count(*) FROM q_1").fetchone()
        spool.close_db()
    assert rows == 0 and queue.pending_events == 0


def test_a_truncated_spool_is_refused_before_sqlite_reads_a_missing_page(tmp_path):
    path = tmp_path / "spool.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x BLOB)")
    db.executemany("INSERT INTO t VALUES (?)", [(b"x" * 1000,)] * 100)
    db.commit()
    db.close()
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(StorageUnusable, match=rf"is truncated \({size // 2} of {size} bytes\)"):
        spool_module.connect(path)


def test_a_second_lock_on_a_data_dir_names_the_holder(tmp_path):
    holder = rf"in use by another router \(pid {os.getpid()}\)"
    with (
        lock_data_dir(tmp_path / "data"),
        pytest.raises(DataDirLocked, match=holder),
        lock_data_dir(tmp_path / "data"),
    ):
        pass
    with lock_data_dir(tmp_path / "data"):  # released on exit
        pass
