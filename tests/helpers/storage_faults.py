"""Real storage faults for tests: a small tmpfs that fills up or goes read-only.

The tests run as root, so file permissions would not stop a write; a
mounted tmpfs gives a real ENOSPC or EROFS from the kernel instead.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def tmpfs(path: Path, size: str = "1m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``path`` (created), unmounted on exit."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        check=True,
        capture_output=True,
    )
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(path)], check=True)  # still busy: detach it


def remount(path: Path, mode: str) -> None:
    """Remount the tmpfs on ``path`` ``"ro"`` or ``"rw"``."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True, capture_output=True)


def fill(fs: Path, *, leave: int = 0) -> Path:
    """Fill the file system of ``fs`` with one file, then free ``leave`` bytes of it."""
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for block in (bytes(65536), bytes(4096), b"\0"):
            while True:
                try:
                    os.write(fd, block)
                except OSError:  # ENOSPC
                    break
        if leave:
            os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    finally:
        os.close(fd)
    return filler


def sqlite_file(path: Path, rows: int = 200) -> Path:
    """A real SQLite file of about ``rows`` KiB (journal in the file, not a WAL)."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x BLOB)")
    db.executemany("INSERT INTO t VALUES (?)", [(os.urandom(1000),)] * rows)
    db.commit()
    db.close()
    return path


@contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """``chattr +i`` on ``paths`` (ext4): even root's open descriptors cannot write them."""
    try:
        subprocess.run(["chattr", "+i", *map(str, paths)], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True, capture_output=True)
