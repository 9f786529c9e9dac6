"""pytest fixtures for the router and its plugins (the ``pytest11`` entry point)."""

from __future__ import annotations

import pytest

from router.pluginmanager import make_plugin_manager
from router.registry import Registry, build_registry


@pytest.fixture
def router_registry() -> Registry:
    """The built-in and installed plugins, registered once for this test."""
    return build_registry(make_plugin_manager())


@pytest.fixture
async def fake_upstream():
    """A recording, fault-injecting HTTP server on 127.0.0.1 (see ``FakeUpstream``)."""
    from router.testing.upstream import FakeUpstream

    async with FakeUpstream.running() as upstream:
        yield upstream


@pytest.fixture
async def redis_prefix():
    """A key prefix for this test on the suite's Redis; its keys are deleted afterwards."""
    from router.testing.redis import delete_prefix, new_prefix

    prefix = new_prefix()
    yield prefix
    await delete_prefix(prefix)
