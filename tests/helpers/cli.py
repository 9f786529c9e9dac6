"""Running the real command line (``python -m router``) in end-to-end tests, and its configs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple


class Ran(NamedTuple):
    """What a finished ``router`` command left: exit code, stdout, stderr lines."""

    code: int
    out: str
    err: list[str]


def run_router(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Ran:
    """``python -m router ARGS`` with entry-point plugins off and ``ROUTER_DEBUG`` unset.

    ``router run`` gets ``--admin-bind 127.0.0.1:0`` unless the arguments name
    one, as with DaemonProcess: tests run many daemons at once.
    """
    if args[:1] == ("run",) and "--admin-bind" not in args:
        args = (*args, "--admin-bind", "127.0.0.1:0")
    result = subprocess.run(
        [sys.executable, "-m", "router", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={
            **os.environ,
            "ROUTER_DISABLE_PLUGIN_AUTOLOAD": "1",
            "ROUTER_DEBUG": "",
            **(env or {}),
        },
        timeout=timeout,
    )
    return Ran(result.returncode, result.stdout, result.stderr.splitlines())


def one_line(err: list[str]) -> str:
    """The only stderr line, which is no traceback."""
    assert len(err) == 1, err
    assert "Traceback" not in err[0] and "ExceptionGroup" not in err[0]
    return err[0]


def user_error(ran: Ran) -> str:
    """The one line of a command that stopped on a user's mistake (exit 2)."""
    assert ran.code == 2, ran
    return one_line(ran.err)


def write_config(path: Path, text: str) -> Path:
    """Write ``text`` (dedented) to ``path``; returns ``path``."""
    path.write_text(textwrap.dedent(text))
    return path
