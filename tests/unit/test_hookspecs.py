"""The hook specs: their markers, signatures and options as pluggy sees them."""

from __future__ import annotations

import inspect
import types

import pluggy
import pytest

from router import hookimpl, hookspecs

REGISTRATION = [
    "router_codecs",
    "router_config_schema",
    "router_sinks",
    "router_sources",
    "router_validators",
]
LIFECYCLE = ["router_shutdown", "router_startup"]


def manager(*plugins: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for i, plugin in enumerate(plugins):
        pm.register(plugin, name=f"p{i}")
    return pm


def test_the_hooks_are_registration_and_lifecycle_hooks():
    names = sorted(name for name in vars(hookspecs) if name.startswith("router_"))
    assert names == sorted(REGISTRATION + LIFECYCLE)


@pytest.mark.parametrize("name", REGISTRATION)
def test_registration_hooks_take_nothing_and_document_what_they_return(name):
    spec = getattr(hookspecs, name)
    assert list(inspect.signature(spec).parameters) == []
    assert ":returns:" in spec.__doc__


@pytest.mark.parametrize("name", LIFECYCLE)
def test_lifecycle_hooks_are_given_the_registry_and_the_config(name):
    assert list(inspect.signature(getattr(hookspecs, name)).parameters) == ["registry", "config"]


@pytest.mark.parametrize("name", REGISTRATION + LIFECYCLE)
def test_every_hook_collects_every_plugins_answer_and_is_not_historic(name):
    opts = getattr(manager().hook, name).spec.opts
    assert opts["firstresult"] is False and opts["historic"] is False


def test_the_markers_are_the_projects():
    assert hookspecs.hookimpl is hookimpl
    assert hookspecs.hookspec.project_name == hookimpl.project_name == "router"


@pytest.mark.hook("router_startup")
def test_an_implementation_may_take_any_subset_of_the_parameters():
    seen = []
    pm = manager(
        types.SimpleNamespace(router_startup=hookimpl(lambda config: seen.append(("c", config)))),
        types.SimpleNamespace(router_startup=hookimpl(lambda: seen.append(("none",)))),
    )
    pm.hook.router_startup(registry="R", config="C")
    assert sorted(seen) == [("c", "C"), ("none",)]


def test_an_implementation_with_a_parameter_no_spec_has_is_refused():
    refused = r"\{'daemon'\} are declared in the hookimpl"
    with pytest.raises(pluggy.PluginValidationError, match=refused):
        manager(types.SimpleNamespace(router_startup=hookimpl(lambda registry, daemon: None)))
