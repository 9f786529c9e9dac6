"""The built-in ``file`` sink: canonical events as JSON lines in a local file.

Registered like any other plugin (see ``BUILTIN_PLUGINS``). Useful as the
default destination, for audits, and for checking what the router accepted.
A relative ``path`` is under the daemon's data dir, so ``--data-dir`` moves it
and each worker of ``--workers N`` writes its own file.

A file that cannot be opened stops startup with one line naming it; a write
that fails (disk full, read-only) is cut back to the last whole batch and
retried like an unreachable upstream, so the file never holds a torn line.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import trio

from router.errors import SinkUnavailable, StorageUnusable
from router.hookspecs import hookimpl
from router.sink import Sink
from router.storage import describe

__all__ = ["FileSink"]


class FileSink(Sink):
    """Appends each event as one JSON line; writes are flushed (and fsynced if asked)."""

    kind = "file"
    vendor = None
    options_schema = {
        "path": {"type": "string", "required": True, "empty": False},
        "fsync": {"type": "boolean"},
    }
    # One writer keeps lines whole and in order.
    delivery_defaults = {"batch": {"max_events": 1000, "max_wait": 0.2}, "max_concurrency": 1}

    _fd: int | None = None

    def _fix(self) -> str:
        return f"set sinks.{self.name}.path to a writable file"

    async def open(self) -> None:
        path = Path(self.options["path"])
        if not path.is_absolute() and self.data_dir is not None:
            path = self.data_dir / path
        self._path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageUnusable(path, describe(path, exc, what="sink", fix=self._fix())) from exc

    async def send(self, batch: Sequence[bytes]) -> None:
        # One copy of the batch, not two (join, then + b"\n"): events may be large.
        try:
            await trio.to_thread.run_sync(self._append, b"\n".join([*batch, b""]))
        except OSError as exc:
            raise SinkUnavailable(describe(self._path, exc, what="sink", fix=self._fix())) from exc

    def _append(self, data: bytes) -> None:
        fd = self._fd
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self.options.get("fsync"):
                os.fsync(fd)
        except OSError:
            # Cut a partial batch off so the retry appends whole lines after whole lines.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise

    async def aclose(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@hookimpl
def router_sinks():
    return [FileSink]
