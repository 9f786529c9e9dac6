"""The daemon as a real subprocess (``python -m router run``), for signal and crash tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson
import trio

__all__ = ["DaemonProcess", "on_any_admin_port"]


def on_any_admin_port(args: Sequence[str]) -> list[str]:
    """``router run`` arguments with ``--admin-bind 127.0.0.1:0`` unless they name one.

    Tests run many daemons at once: the default admin port would be taken.
    """
    args = list(args)
    if args[:1] == ["run"] and "--admin-bind" not in args:
        args += ["--admin-bind", "127.0.0.1:0"]
    return args


class DaemonProcess:
    """``router run`` in a child process, logging JSON lines that the test reads.

    ``await start()`` returns once the daemon logged ``daemon.ready`` (with
    ``--workers N``: once the supervisor logged ``workers.ready``, every
    worker serving); ``url`` is then the address it bound (use ``--bind
    127.0.0.1:0``) and ``admin_url`` its admin listener's, one for a group.
    ``router run`` gets ``--admin-bind 127.0.0.1:0`` unless the arguments
    name one: tests run many daemons at once.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
    ):
        self.args = [sys.executable, "-m", "router", *on_any_admin_port(args)]
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.logs: list[dict] = []
        self.raw: list[str] = []
        self.url = ""
        self.admin_url: str | None = None
        self.process: trio.Process | None = None
        self._ready = trio.Event()
        self._exited = trio.Event()

    async def start(self, nursery: trio.Nursery, *, ready_within: float = 30) -> DaemonProcess:
        self.process = await trio.lowlevel.open_process(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd
        )
        nursery.start_soon(self._read)
        with trio.fail_after(ready_within):
            await self._ready.wait()
        if not self.url:
            raise RuntimeError("daemon exited before it was ready:\n" + "\n".join(self.raw))
        return self

    async def _read(self) -> None:
        buffer = b""
        async for chunk in self.process.stdout:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                self._line(line)
        if buffer:
            self._line(buffer)
        await self.process.wait()
        self._ready.set()
        self._exited.set()

    def _line(self, line: bytes) -> None:
        text = line.decode(errors="replace")
        self.raw.append(text)
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            return
        if isinstance(entry, dict):
            self.logs.append(entry)
            event = entry.get("event")
            # A worker of a group is ready alone; the group once its supervisor says so.
            if event == "workers.ready" or (event == "daemon.ready" and "worker" not in entry):
                self.url = entry["binds"][0]
                self.admin_url = entry.get("admin")
                self._ready.set()

    def events(self, name: str) -> list[dict]:
        return [entry for entry in self.logs if entry.get("event") == name]

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a crash."""
        self.process.kill()

    async def wait(self, within: float = 30) -> int:
        with trio.fail_after(within):
            await self._exited.wait()
        return self.process.returncode
