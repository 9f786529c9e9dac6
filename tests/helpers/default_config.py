"""The shipped default config (config/router.yaml) and the vendors' documented payloads.

The default config writes ``./data/events.ndjson``: tests run it with the
test's ``tmp_path`` as the working directory (the ``daemon`` fixture of
tests/e2e/conftest.py does).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import yaml

from router.testing.daemon import RunningDaemon, running_daemon
from tests.helpers.ndjson import wait_for_lines

ROOT = Path(__file__).parents[2]
PAYLOADS = ROOT / "tests" / "data" / "payloads"
#: config/router.yaml as text, and parsed.
DEFAULT_YAML = (ROOT / "config" / "router.yaml").read_text()
DEFAULT: dict[str, Any] = yaml.safe_load(DEFAULT_YAML)


def payload(vendor: str, name: str) -> Any:
    """tests/data/payloads/<vendor>/<name>, parsed."""
    return orjson.loads((PAYLOADS / vendor / name).read_bytes())


@asynccontextmanager
async def running_default(tmp_path: Path, **server: Any) -> AsyncIterator[RunningDaemon]:
    """The default config (``server`` keys overridden) on loopback, data in ``tmp_path/data``."""
    config: Any = DEFAULT_YAML
    if server:
        config = {**DEFAULT, "server": {**DEFAULT["server"], **server}}
    async with running_daemon(config, data_dir=tmp_path / "data") as rd:
        yield rd


async def events_written(tmp_path: Path, n: int) -> list[dict[str, Any]]:
    """The events of ``data/events.ndjson`` once it holds at least ``n``."""
    return await wait_for_lines(tmp_path / "data" / "events.ndjson", n)
