"""pytest fixtures for the router and its plugins (the ``pytest11`` entry point)."""

from __future__ import annotations

import pytest

from router.pluginmanager import make_plugin_manager
from router.registry import Registry, build_registry


@pytest.fixture
def router_registry() -> Registry:
    """The built-in and installed plugins, registered once for this test."""
    return build_registry(make_plugin_manager())
