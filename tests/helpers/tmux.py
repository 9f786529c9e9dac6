"""A command in a real terminal: a private tmux server, one session, its screen as text."""

from __future__ import annotations

import shlex
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio


class Terminal:
    """One tmux session of ``width`` by ``height`` running a command; the pane stays after it exits.

    The command runs in ``sh -c`` (tmux's default shell), which writes its
    exit code to ``status_file``.
    """

    def __init__(self, width: int, height: int, status_file: Path):
        # -L: a socket of its own under tmux's directory (short: unix paths are limited).
        self.server = ["tmux", "-L", f"router-test-{uuid.uuid4().hex[:12]}", "-f", "/dev/null"]
        self.width, self.height = width, height
        self.status_file = status_file

    async def tmux(self, *args: str) -> str:
        done = await trio.run_process([*self.server, *args], capture_stdout=True, check=True)
        return done.stdout.decode()

    async def start(self, command: str) -> None:
        size = ["-x", str(self.width), "-y", str(self.height)]
        wrapped = f"{command}; echo $? > {shlex.quote(str(self.status_file))}"
        # One server command: remain-on-exit is on before the command could end.
        await self.tmux(
            *("new-session", "-d", "-s", "t", *size, wrapped),
            *(";", "set-option", "-w", "-t", "t", "remain-on-exit", "on"),
        )

    async def screen(self) -> list[str]:
        """What the pane shows now, one string per row (tmux drops trailing blanks)."""
        return (await self.tmux("capture-pane", "-p", "-t", "t")).split("\n")[: self.height]

    async def keys(self, *keys: str) -> None:
        await self.tmux("send-keys", "-t", "t", *keys)

    async def wait_for(
        self, condition: Callable[[list[str]], bool], within: float = 30
    ) -> list[str]:
        """The first screen for which ``condition`` holds (polled); fails with the last one."""
        lines: list[str] = []
        try:
            with trio.fail_after(within):
                while True:
                    lines = await self.screen()
                    if condition(lines):
                        return lines
                    await trio.sleep(0.1)
        except trio.TooSlowError:
            raise AssertionError("the screen never showed it:\n" + "\n".join(lines)) from None

    async def exit_status(self, within: float = 15) -> int:
        """The command's exit code, once it has exited.

        The shell around it writes the code to a file: tmux itself sometimes
        leaves an exited command unreaped for a long while, its pane not dead.
        """
        with trio.fail_after(within):
            while not self.status_file.exists() or not self.status_file.read_text().strip():  # noqa: ASYNC110
                await trio.sleep(0.05)
        return int(self.status_file.read_text())

    async def text(self) -> list[str]:
        """Every row written, history too, that is not blank, but tmux's "Pane is dead" line.

        Once the command has exited, tmux scrolls what it left into the history.
        """
        shown = await self.tmux("capture-pane", "-p", "-S", "-", "-t", "t")
        return [
            line
            for line in shown.split("\n")
            if line.strip() and not line.startswith("Pane is dead")
        ]


@asynccontextmanager
async def terminal(width: int = 80, height: int = 24) -> AsyncIterator[Terminal]:
    """A :class:`Terminal`; its tmux server is killed on the way out."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: apt-get install -y tmux (.ci/run installs it)")
    with tempfile.TemporaryDirectory(prefix="router-tmux-") as scratch:
        term = Terminal(width, height, Path(scratch) / "status")
        try:
            yield term
        finally:
            with trio.CancelScope(shield=True):
                kill = [*term.server, "kill-server"]
                await trio.run_process(kill, check=False, capture_stderr=True)
