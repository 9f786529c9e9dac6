"""pytest fixtures for the router and its plugins (the ``pytest11`` entry point).

Installing the router makes these fixtures available in every test suite,
a plugin's included, with no ``conftest.py``:

- ``router_registry`` and ``router_builtin_registry``: registries,
  built once per session, so hypothesis ``@given`` tests may use them;
- ``fake_upstream``: a recording, fault-injecting HTTP server
  (``router.testing.upstream.FakeUpstream``);
- ``redis_prefix``: a key prefix on the suite's Redis, cleaned up after.

``registry_of`` builds a registry with a plugin under test registered,
without installing it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

import pytest

from router.pluginmanager import make_plugin_manager
from router.registry import Registry, build_registry

if TYPE_CHECKING:
    from router.testing.upstream import FakeUpstream

__all__ = [
    "fake_upstream",
    "redis_prefix",
    "registry_of",
    "router_builtin_registry",
    "router_registry",
]


def registry_of(plugins: Iterable[tuple[str, Any]] = (), *, autoload: bool = False) -> Registry:
    """A registry of the built-in plugins, ``plugins`` and, with ``autoload``, the installed ones.

    :param plugins: ``(name, module or object)`` pairs registered like an
        installed plugin of that name: ``registry_of([("example", router_example)])``.
    :param autoload: Also load every ``router.plugins`` entry point (unless
        ``ROUTER_DISABLE_PLUGIN_AUTOLOAD=1``).
    :raises router.PluginError: if a hook fails or two plugins claim one name.
    """
    return build_registry(make_plugin_manager(autoload=autoload, extra=tuple(plugins)))


@pytest.fixture(scope="session")
def router_registry() -> Registry:
    """The built-in and installed plugins, registered once per test session.

    Session-scoped, so ``@given`` tests pass hypothesis's health check. The
    registry is frozen; build your own with ``registry_of`` to register
    a plugin that is not installed.
    """
    return registry_of(autoload=True)


@pytest.fixture(scope="session")
def router_builtin_registry() -> Registry:
    """The built-in plugins only (no entry points), registered once per test session."""
    return registry_of()


@pytest.fixture
async def fake_upstream() -> AsyncIterator[FakeUpstream]:
    """A ``router.testing.upstream.FakeUpstream`` on ``127.0.0.1``, running for this test.

    Point a sink's ``url`` at ``fake_upstream.url``; script replies with
    ``fake_upstream.script(...)`` and wait for requests with
    ``await fake_upstream.wait_for(n)``.
    """
    from router.testing.upstream import FakeUpstream

    async with FakeUpstream.running() as upstream:
        yield upstream


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix for this test on the suite's Redis; its keys are deleted afterwards."""
    from router.testing.redis import delete_prefix, new_prefix

    prefix = new_prefix()
    yield prefix
    await delete_prefix(prefix)
