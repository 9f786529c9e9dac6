"""Storage that cannot be used at startup: one line naming the file and the fix, exit 2.

Each case runs the real command line (``python -m router ...``) as a
subprocess on real files: damaged databases, a tmpfs that is full or
read-only, a data directory that is a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from router.spool import connect, sink_ids
from tests.helpers.cli import Ran, run_router, user_error, write_config
from tests.helpers.storage_faults import fill, remount, sqlite_file, tmpfs


def conscent_to_file(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "router.yaml",
        f"""\
        logging: {{level: info, format: json}}
        sources:
          conscent: {{plugin: conscent, auth: none}}
        sinks:
          out: {{plugin: file, path: {tmp_path}/out.ndjson}}
        routes: [{{from: conscent, to: out}}]
        """,
    )


def run(tmp_path: Path, data_dir: Path, *extra: str) -> Ran:
    config = conscent_to_file(tmp_path)
    return run_router(
        "run", "-c", str(config), "--bind", "127.0.0.1:0", "--data-dir", str(data_dir), *extra
    )


def garbage_spool(data: Path) -> Path:
    data.mkdir(parents=True)
    (data / "spool.db").write_bytes(b"this is not a database\n" * 100)
    return data / "spool.db"


def truncated_spool(data: Path) -> Path:
    data.mkdir()
    path = sqlite_file(data / "spool.db")
    os.truncate(path, path.stat().st_size // 3)
    return path


def damaged_spool(data: Path) -> Path:
    data.mkdir()
    path = sqlite_file(data / "spool.db")
    with open(path, "r+b") as f:  # the schema page, after the 100-byte file header
        f.seek(100)
        f.write(b"\xff" * 3000)
    return path


def png_quarantine(data: Path) -> Path:
    data.mkdir()
    (data / "quarantine.db").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(20_000))
    return data / "quarantine.db"


def spool_is_a_directory(data: Path) -> Path:
    (data / "spool.db").mkdir(parents=True)
    return data / "spool.db"


def data_dir_is_a_file(data: Path) -> Path:
    data.write_text("not a directory")
    return data


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (garbage_spool, "is not a SQLite database (file is not a database): move it aside"),
        (truncated_spool, "is truncated"),
        (damaged_spool, "is damaged"),
        (png_quarantine, "is not a SQLite database"),
        (spool_is_a_directory, "is a directory, not a spool file"),
        (data_dir_is_a_file, "is a file, not a directory"),
    ],
)
def test_unusable_data_files_get_one_line_naming_the_file_and_exit_2(tmp_path, make, says):
    data = tmp_path / "data"
    culprit = make(data)
    line = user_error(run(tmp_path, data))
    assert line.startswith("router: error: ")
    assert str(culprit) in line and says in line
    if culprit.name.endswith(".db") and culprit.is_file():
        assert "restore it from a backup" in line


def test_a_data_dir_below_a_file_cannot_be_created(tmp_path):
    (tmp_path / "plain").write_text("x")
    line = user_error(run(tmp_path, tmp_path / "plain" / "data"))
    assert f"cannot create data directory {tmp_path}/plain/data" in line
    assert f"{tmp_path}/plain is a file" in line


@pytest.mark.slow
def test_a_full_disk_at_startup(tmp_path):
    with tmpfs(tmp_path / "fs", "1m") as fs:
        existing = fs / "existing"
        existing.mkdir()
        connect(existing / "spool.db").close()
        fill(fs)
        for data in (fs / "new", existing):
            line = user_error(run(tmp_path, data))
            assert "no space left to write" in line and str(data) in line, line
            assert "free space on its disk, or point server.data_dir (--data-dir)" in line


@pytest.mark.slow
def test_a_read_only_data_dir_at_startup(tmp_path):
    with tmpfs(tmp_path / "fs", "1m") as fs:
        existing = fs / "existing"
        existing.mkdir()
        connect(existing / "spool.db").close()
        remount(fs, "ro")
        line = user_error(run(tmp_path, existing))
        assert f"{existing}/" in line and "is on a read-only file system" in line
        assert "remount it read-write" in line
        line = user_error(run(tmp_path, fs / "new"))
        assert f"cannot create data directory {fs}/new" in line
        assert "read-only file system" in line


def test_a_file_sink_on_a_read_only_path(tmp_path):
    with tmpfs(tmp_path / "fs", "1m") as fs:
        remount(fs, "ro")
        config = conscent_to_file(tmp_path)
        config.write_text(config.read_text().replace(f"{tmp_path}/out.ndjson", f"{fs}/out.ndjson"))
        result = run_router(
            "run", "-c", str(config), "--bind", "127.0.0.1:0", "--data-dir", str(tmp_path / "d")
        )
    line = user_error(result)
    assert line == (
        f"router: error: {fs}/out.ndjson is on a read-only file system (Read-only file system): "
        "remount it read-write, or set sinks.out.path to a writable file"
    )


@pytest.mark.slow
def test_workers_report_a_damaged_spool_once_and_are_not_restarted(tmp_path):
    data = tmp_path / "data"
    garbage_spool(data / "worker-1")
    line = user_error(run(tmp_path, data, "--workers", "2"))
    assert f"router: error: {data}/worker-1/spool.db is not a SQLite database" in line


def test_workers_on_a_full_disk(tmp_path):
    with tmpfs(tmp_path / "fs", "1m") as fs:
        fill(fs)
        line = user_error(run(tmp_path, fs / "data", "--workers", "2"))
    assert f"no space left to write {fs}/data/" in line


def test_dlq_and_quarantine_commands_on_damaged_files(tmp_path):
    data = tmp_path / "data"
    spool = garbage_spool(data)
    line = user_error(run_router("dlq", "list", "out", "--data-dir", str(data)))
    assert line.startswith(f"router: error: {spool} is not a SQLite database")
    quarantine = data / "quarantine.db"
    quarantine.write_bytes(os.urandom(10_000))
    line = user_error(run_router("quarantine", "list", "--data-dir", str(data)))
    assert line.startswith(f"router: error: {quarantine} is not a SQLite database")


def test_dlq_replay_on_a_full_disk(tmp_path):
    with tmpfs(tmp_path / "fs", "1m") as fs:
        data = fs / "data"
        data.mkdir()
        db = connect(data / "spool.db")
        (sink,) = sink_ids(db, ["out"]).values()
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO dead_letters (sink, event_id, payload, reason, attempts, enqueued_at, "
            "dead_at) VALUES (?, ?, ?, 'rejected', 1, 0, 0)",
            [(sink, f"e{i}", b"{}" * 200) for i in range(200)],
        )
        db.execute("COMMIT")
        db.close()
        filler = fill(fs)
        line = user_error(run_router("dlq", "replay", "out", "--data-dir", str(data)))
        assert line.startswith(f"router: error: no space left to write {data}/spool.db")
        filler.unlink()
        db = connect(data / "spool.db")
        assert db.execute("SELECT count(*) FROM dead_letters").fetchone() == (200,)
        db.close()
