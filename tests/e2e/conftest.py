"""Fixtures of the end-to-end tests; their helpers are in tests/helpers."""

from __future__ import annotations

import pytest

from tests.helpers.default_config import running_default


@pytest.fixture
async def daemon(tmp_path, monkeypatch):
    """The shipped default config on loopback, run from ``tmp_path`` (it writes ./data/)."""
    monkeypatch.chdir(tmp_path)
    async with running_default(tmp_path) as rd:
        yield rd
