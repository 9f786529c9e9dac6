"""The ``hook`` marker: a test marked ``@pytest.mark.hook("router_sinks")`` must call that hook.

A marked test fails unless, while it ran, the named hook was called through a
plugin manager (``pm.hook.router_sinks()``, a subset caller as
``router.registry`` uses, or the daemon's startup and shutdown). Calls are
seen by wrapping :meth:`pluggy.HookCaller.__call__` for the test's duration,
so any manager the test builds is covered. ``tests/test_meta.py`` requires a
marked test for every hookspec.

Loaded by ``tests/conftest.py`` (``pytest_plugins``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pluggy
import pytest

from router import hookspecs

MARKER = "hook"

#: The router's hooks; the calls of pytest's own hooks are not recorded.
HOOKS = frozenset(name for name in dir(hookspecs) if name.startswith(f"{hookspecs.PROJECT}_"))


@contextmanager
def recording_hook_calls() -> Iterator[set[str]]:
    """Yield the set of router hook names called through any plugin manager, filled as they are."""
    called: set[str] = set()
    original = pluggy.HookCaller.__call__

    def recorded(self: pluggy.HookCaller, **kwargs: object) -> Any:
        if self.name in HOOKS:
            called.add(self.name)
        return original(self, **kwargs)

    pluggy.HookCaller.__call__ = recorded  # type: ignore[method-assign]
    try:
        yield called
    finally:
        pluggy.HookCaller.__call__ = original  # type: ignore[method-assign]


def marked_hooks(item: pytest.Item) -> list[str]:
    """The hook names of every ``hook`` marker on ``item``, checked against the hookspecs."""
    names = [name for mark in item.iter_markers(MARKER) for name in mark.args]
    unknown = sorted(set(names) - HOOKS)
    if unknown:
        raise pytest.UsageError(
            f"{item.nodeid}: no such hook {unknown}; the hooks are {sorted(HOOKS)}"
        )
    return names


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*names): the test calls these router hooks through a plugin manager "
        "(checked: the test fails if it does not)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    expected = marked_hooks(item)
    if not expected:
        return (yield)
    with recording_hook_calls() as called:
        result = yield
    missing = [name for name in expected if name not in called]
    if missing:
        pytest.fail(
            f"marked @pytest.mark.hook({', '.join(map(repr, expected))}) but never called "
            f"{', '.join(missing)} through a plugin manager; call it (pm.hook.<name>, "
            "build_registry, a running daemon) or drop the marker",
            pytrace=False,
        )
    return result
