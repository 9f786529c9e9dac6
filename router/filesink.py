"""The built-in ``file`` sink: canonical events as JSON lines in a local file.

Registered like any other plugin (see ``BUILTIN_PLUGINS``). Useful as the
default destination, for audits, and for checking what the router accepted.
A relative ``path`` is under the daemon's data dir, so ``--data-dir`` moves it
and each worker of ``--workers N`` writes its own file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import trio

from router import Sink, hookimpl

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

    async def open(self) -> None:
        path = Path(self.options["path"])
        if not path.is_absolute() and self.data_dir is not None:
            path = self.data_dir / path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = await trio.open_file(path, "ab")

    async def send(self, batch: Sequence[bytes]) -> None:
        # One copy of the batch, not two (join, then + b"\n"): events may be large.
        await self._file.write(b"\n".join([*batch, b""]))
        await self._file.flush()
        if self.options.get("fsync"):
            await trio.to_thread.run_sync(os.fsync, self._file.fileno())

    async def aclose(self) -> None:
        if getattr(self, "_file", None) is not None:
            await self._file.aclose()


@hookimpl
def router_sinks():
    return [FileSink]
