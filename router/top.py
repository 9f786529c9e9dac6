"""``router top``: read ``GET /admin/status`` every ``--interval`` seconds and draw it.

The screen itself is :func:`router.topview.render`; this module reads the
snapshot, keeps the terminal (the alternate screen, keys without Enter) and
quits on ``q`` (exit 0) or Ctrl-C (exit 130). With ``--once`` it prints one
frame, all rows, and exits: 1, with one line on stderr, if the admin
listener cannot be read. Several ``--admin`` URLs (one per daemon) are
shown added up, as :func:`router.status.merge` adds up a group's workers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

import httpx
import orjson

from router.adminclient import admin_client, admin_targets, admin_url
from router.errors import UsageError
from router.status import merge
from router.topview import render

__all__ = ["AdminRefused", "AdminUnreachable", "Poller", "admin_url", "command"]

#: The exit code when the admin listener cannot be read or refuses us.
EXIT_UNREADABLE = 1
#: Seconds a status request may take before the daemon counts as unreachable.
TIMEOUT = 2.0


class AdminUnreachable(Exception):
    """The admin listener did not answer, or answered something that is no snapshot."""


class AdminRefused(Exception):
    """The admin listener answered 401: it needs (another) ``--token``."""


class Poller:
    """Reads the status snapshot of one or more admin listeners (``http://…`` or ``unix:PATH``)."""

    def __init__(self, urls: Sequence[str], token: str | None, timeout: float = TIMEOUT):
        self.urls = list(urls)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.has_token = token is not None
        self._clients = [admin_client(url, headers, timeout) for url in self.urls]

    def read(self) -> dict[str, Any]:
        """The snapshot (several added up).

        :raises AdminUnreachable: naming the URL and why.
        :raises AdminRefused: on a 401.
        """
        snapshots = [
            self._read(url, client) for url, client in zip(self.urls, self._clients, strict=True)
        ]
        return snapshots[0] if len(snapshots) == 1 else merge(snapshots)

    def _read(self, url: str, client: httpx.Client) -> dict[str, Any]:
        try:
            response = client.get("/admin/status")
        except httpx.TimeoutException:
            raise AdminUnreachable(f"cannot reach {url}: no answer within {TIMEOUT:g}s") from None
        except httpx.TransportError as exc:
            raise AdminUnreachable(f"cannot reach {url}: {_reason(exc)}") from None
        if response.status_code == 401:
            if self.has_token:
                raise AdminRefused(f"{url} refused the token (401): check --token")
            raise AdminRefused(f"{url} needs --token (its admin.token is set)")
        if response.status_code != 200:
            raise AdminUnreachable(f"{url} answered {response.status_code} to /admin/status")
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or "sources" not in data:
            raise AdminUnreachable(f"{url} answered no status snapshot: is it a router's admin?")
        return data

    def close(self) -> None:
        for client in self._clients:
            client.close()


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words (``Connection refused``)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


# -- the command -----------------------------------------------------------------


def command(args: argparse.Namespace) -> int:
    """``router top``: the exit code (0, 1 unreadable or refused; 130 by Ctrl-C, from ``main``)."""
    urls, token = admin_targets(args.admin, args.token, args.config, "router top")
    poller = Poller(urls, token)
    try:
        if args.once:
            return once(poller, sys.stdout, sys.stderr)
        return interactive(poller, args.interval, sys.stdin, sys.stderr)
    finally:
        poller.close()


def once(poller: Poller, out: TextIO, err: TextIO) -> int:
    """Print one frame with every row; 1 and one line on ``err`` if it cannot be read."""
    from rich.console import Console

    try:
        snapshot = poller.read()
    except (AdminUnreachable, AdminRefused) as exc:
        print(f"router: {exc}", file=err)
        return EXIT_UNREADABLE
    console = Console(file=out, highlight=False)
    console.print(render(snapshot, width=console.width, height=None, target=_label(poller)))
    return 0


def interactive(poller: Poller, interval: float, keys_from: TextIO, err: TextIO) -> int:
    """Redraw every ``interval`` seconds until ``q`` (0); a 401 ends it with one line (1)."""
    from rich.console import Console
    from rich.live import Live

    console = Console(highlight=False)
    if not console.is_terminal:
        raise UsageError("router top draws on a terminal; use --once to print one frame")
    snapshot: dict[str, Any] | None = None
    refused: str | None = None
    with (
        _keys(keys_from) as wait_for_key,
        Live(console=console, screen=True, auto_refresh=False, transient=True) as live,
    ):
        while True:
            started = time.monotonic()
            error = None
            try:
                snapshot = poller.read()
            except AdminUnreachable as exc:
                error = str(exc)
            except AdminRefused as exc:
                refused = str(exc)
                break
            width, height = console.size
            frame = render(snapshot, width=width, height=height, target=_label(poller), error=error)
            live.update(frame, refresh=True)
            if "q" in wait_for_key(max(0.0, interval - (time.monotonic() - started))).lower():
                break
    if refused is not None:
        print(f"router: {refused}", file=err)
        return EXIT_UNREADABLE
    return 0


def _label(poller: Poller) -> str:
    return ", ".join(poller.urls)


@contextlib.contextmanager
def _keys(stream: TextIO) -> Iterator[Callable[[float], str]]:
    """A function that waits up to N seconds for keys and returns them ("" if none).

    On a terminal keys come one by one without Enter (cbreak: Ctrl-C still
    interrupts); the terminal is set back as it was on the way out.
    """
    if not stream.isatty():

        def sleep(timeout: float) -> str:
            time.sleep(timeout)
            return ""

        yield sleep
        return
    import termios
    import tty

    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def wait(timeout: float) -> str:
        deadline = time.monotonic() + timeout
        ready, _, _ = select.select([fd], [], [], timeout)
        data = os.read(fd, 64) if ready else b""
        if ready and not data:  # end of input: no more keys, but still one frame a period
            time.sleep(max(0.0, deadline - time.monotonic()))
        return data.decode(errors="replace")

    try:
        yield wait
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
