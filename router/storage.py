"""Storage failures as one line that names the file and says what to do.

Used by the spool, the quarantine, the data directory lock and the file sink:
:func:`describe` turns an ``OSError`` or ``sqlite3.Error`` into that line,
:func:`open_sqlite` opens a database file or raises
:class:`~router.errors.StorageUnusable`, and :class:`WriteHealth` remembers
whether a database can currently be written (``/readyz``), logging once per
change of state rather than once per failed request.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from router.errors import DataDirLocked, StorageUnusable

__all__ = [
    "DATA_DIR_FIX",
    "PROBE_SCHEMA",
    "WriteHealth",
    "describe",
    "lock_data_dir",
    "make_data_dir",
    "open_sqlite",
    "probe_write",
]

log = structlog.get_logger()

#: What to do about a data directory that cannot be used, besides fixing it.
DATA_DIR_FIX = "point server.data_dir (--data-dir) elsewhere"
#: Below this many free bytes a file system counts as full when SQLite fails.
LOW_SPACE = 64 << 10
#: Bytes written by a probe: enough pages that a full disk cannot absorb them.
PROBE_BYTES = 64 << 10

PROBE_SCHEMA = "CREATE TABLE IF NOT EXISTS write_probe (id INTEGER PRIMARY KEY, at REAL, pad BLOB);"

# SQLite primary result codes (sqlite3.Error.sqlite_errorcode & 0xff).
_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT = 3, 8, 10, 11
_SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 13, 14, 26


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (what a file system can be asked about)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _file_system(path: Path) -> str | None:
    """``"read-only"`` or ``"full"`` if the file system holding ``path`` is, else None."""
    try:
        st = os.statvfs(_existing(path))
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return "read-only"
    if st.f_bavail * st.f_frsize < LOW_SPACE:
        return "full"
    return None


def _unwritable(path: Path) -> bool:
    """True if the database or its write-ahead log exists and cannot be written.

    ``access()`` sees what permission bits do not for root: ``chattr +i``.
    """
    if not path.exists():
        return path.parent.is_dir() and not os.access(path.parent, os.W_OK)
    wal = path.with_name(path.name + "-wal")
    return any(p.exists() and not os.access(p, os.W_OK) for p in (path, wal))


def _kind(path: Path, exc: BaseException) -> str:
    """What went wrong: full, read-only, denied, isdir, notadb, corrupt or other."""
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        if code == _SQLITE_NOTADB:
            return "notadb"
        if code == _SQLITE_CORRUPT:
            return "corrupt"
        if path.is_dir():
            return "isdir"
        if code == _SQLITE_FULL:
            return "full"
        if code in (_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CANTOPEN, _SQLITE_PERM, 0):
            return _file_system(path) or ("denied" if _unwritable(path) else "other")
        return "other"
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "full"
        if exc.errno == errno.EROFS:
            return "read-only"
        if exc.errno == errno.EISDIR:
            return "isdir"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return _file_system(path) or "denied"
        return _file_system(path) or "other"
    return "other"


def _detail(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def describe(path: Path | str, exc: BaseException, *, what: str, fix: str = DATA_DIR_FIX) -> str:
    """One line: ``path``, what is wrong with it (from ``exc``), and what to do.

    :param what: what the file holds, for the advice (``"spool"``, ``"quarantine"``).
    :param fix: the alternative to repairing it, e.g. :data:`DATA_DIR_FIX`.
    """
    path = Path(path)
    detail = _detail(exc)
    kind = _kind(path, exc)
    if kind == "notadb":
        return (
            f"{path} is not a SQLite database ({detail}): move it aside to start with an "
            f"empty {what}, or restore it from a backup"
        )
    if kind == "corrupt":
        return (
            f"{path} is damaged ({detail}): move it aside to start with an empty {what}, "
            "or restore it from a backup"
        )
    if kind == "isdir":
        return f"{path} is a directory, not a {what} file: move it aside, or {fix}"
    if kind == "full":
        return f"no space left to write {path} ({detail}): free space on its disk, or {fix}"
    if kind == "read-only":
        return f"{path} is on a read-only file system ({detail}): remount it read-write, or {fix}"
    if kind == "denied":
        return f"{path} is not writable ({detail}): make it writable, or {fix}"
    return f"cannot use {path} ({detail}): check the file and its directory, or {fix}"


def make_data_dir(path: Path) -> None:
    """Create the data directory if missing, or raise StorageUnusable saying why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StorageUnusable(
            path,
            f"data directory {path} is a file, not a directory: move it aside, or {DATA_DIR_FIX}",
        ) from None
    except NotADirectoryError:
        parent = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
        raise StorageUnusable(
            path,
            f"cannot create data directory {path}: {parent} is a file, not a directory; "
            f"move it aside, or {DATA_DIR_FIX}",
        ) from None
    except OSError as exc:
        reason = describe(path, exc, what="data directory")
        raise StorageUnusable(path, f"cannot create data directory {path}: {reason}") from exc


def _check_length(path: Path, what: str) -> None:
    """Raise StorageUnusable if ``path`` is shorter than its SQLite header says.

    SQLite itself notices a truncated file only when it reads a missing page,
    which may be long after startup.
    """
    try:
        with open(path, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except (FileNotFoundError, IsADirectoryError):
        return
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return  # empty (new), or not SQLite at all: SQLite says which
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count is valid only while the change counter matches "version-valid-for".
    if header[24:28] == header[92:96] and pages and size < pages * page_size:
        raise StorageUnusable(
            path,
            f"{path} is truncated ({size} of {pages * page_size} bytes): move it aside to "
            f"start with an empty {what}, or restore it from a backup",
        )


def open_sqlite(
    path: Path | str, setup: Callable[[sqlite3.Connection], None], *, what: str
) -> sqlite3.Connection:
    """A connection to ``path`` after ``setup`` ran on it; StorageUnusable if it cannot be."""
    path = Path(path)
    if path.is_dir():
        raise StorageUnusable(
            path, f"{path} is a directory, not a {what} file: move it aside, or {DATA_DIR_FIX}"
        )
    _check_length(path, what)
    db = None
    try:
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        setup(db)
    except (sqlite3.Error, OSError) as exc:
        if db is not None:
            db.close()
        raise StorageUnusable(path, describe(path, exc, what=what)) from exc
    return db


def probe_write(db: sqlite3.Connection) -> None:
    """Commit a write of :data:`PROBE_BYTES`: it fails if the database cannot grow its log."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "INSERT OR REPLACE INTO write_probe (id, at, pad) VALUES (1, ?, zeroblob(?))",
            (time.time(), PROBE_BYTES),
        )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
            db.execute("ROLLBACK")
        raise


class WriteHealth:
    """Whether one database file can be written now, as the last write found it.

    Logs ``storage.write_failed`` when writes start failing and
    ``storage.write_recovered`` when one succeeds again: once per change,
    however many requests fail meanwhile.
    """

    def __init__(self, path: Path | str, what: str):
        self.path = Path(path)
        self.what = what
        #: The line naming the file and the fix while writes fail, else None.
        self.error: str | None = None
        self.failing_since: float | None = None

    def failed(self, exc: BaseException) -> str:
        """Record a failed write; returns the line that describes it."""
        message = describe(self.path, exc, what=self.what)
        if self.error is None:
            self.failing_since = time.time()
            log.error(
                "storage.write_failed",
                path=str(self.path),
                error=message,
                error_type=type(exc).__name__,
                stage="processing",
            )
        self.error = message
        return message

    def ok(self) -> None:
        """Record a successful write."""
        if self.error is not None:
            log.info(
                "storage.write_recovered",
                path=str(self.path),
                failed_for=round(time.time() - (self.failing_since or time.time()), 3),
            )
        self.error = None
        self.failing_since = None


@contextmanager
def lock_data_dir(path: Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``path/LOCK`` so two daemons never share a data dir.

    :raises StorageUnusable: the directory cannot be created or written.
    """
    make_data_dir(path)
    lock_path = path / "LOCK"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageUnusable(lock_path, describe(lock_path, exc, what="lock")) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise DataDirLocked(
                f"data directory {path} is in use by another router (pid {holder}); "
                "give each daemon its own --data-dir"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError as exc:
            raise StorageUnusable(lock_path, describe(lock_path, exc, what="lock")) from exc
        yield path
    finally:
        os.close(fd)
