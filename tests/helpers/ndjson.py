"""The JSON-lines files a file sink writes, read by tests while the daemon runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import trio


def read_lines(path: Path) -> list[Any]:
    """Every line of ``path`` parsed; ``[]`` if the file does not exist yet."""
    return [orjson.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def wait_for_lines(path: Path, n: int, *, within: float = 10) -> list[Any]:
    """The lines of ``path`` once it holds at least ``n``; fails after ``within`` seconds.

    The file is the only signal a file sink gives, so it is polled.
    """
    with trio.fail_after(within):
        while len(lines := read_lines(path)) < n:  # noqa: ASYNC110 - no event to wait on
            await trio.sleep(0.01)
    return lines
