"""Plugin loading and registration: fresh managers, built-ins like third parties, named failures."""

from __future__ import annotations

import types

import pytest

from router import Sink, Source, ValidatorSpec, hookimpl
from router.errors import PluginError
from router.pluginmanager import BUILTIN_PLUGINS, make_plugin_manager
from router.registry import build_registry


def plugin(**hooks) -> types.SimpleNamespace:
    """A plugin object whose attributes are hookimpls."""
    return types.SimpleNamespace(**{name: hookimpl(fn) for name, fn in hooks.items()})


def with_plugin(name: str, **hooks):
    """A fresh manager with the built-ins and one extra plugin."""
    return make_plugin_manager(autoload=False, extra=[(name, plugin(**hooks))])


def test_builtins_are_registered_by_name_like_any_plugin():
    pm = make_plugin_manager(autoload=False)
    assert [name for name, _ in BUILTIN_PLUGINS] == list(pm.origins)
    assert all(origin == "builtin" for _, origin in pm.origins.values())
    registry = build_registry(pm)
    assert set(registry.sources) == {"conscent", "segmento", "moloco", "endu"}
    assert set(registry.sinks) == {"file", "conscent", "segmento", "moloco", "endu"}
    assert set(registry.codecs) == {"conscent", "segmento", "moloco", "endu"}


def test_each_call_builds_a_fresh_manager():
    first = make_plugin_manager(autoload=False)
    second = make_plugin_manager(autoload=False)
    assert first is not second
    assert first.get_plugin("conscent") is second.get_plugin("conscent")  # the same module


def test_blocked_plugins_are_not_loaded():
    registry = build_registry(make_plugin_manager(autoload=False, blocked=["moloco", "endu"]))
    assert set(registry.sources) == {"conscent", "segmento"}


def test_a_raising_hook_names_plugin_and_hook():
    def router_validators():
        raise RuntimeError("boom")

    pm = make_plugin_manager(
        autoload=False, extra=[("bad", plugin(router_validators=router_validators))]
    )
    with pytest.raises(PluginError) as info:
        build_registry(pm)
    assert info.value.plugin == "bad" and info.value.hook == "router_validators"
    assert str(info.value) == "plugin 'bad' in hook router_validators: RuntimeError: boom"


def test_wrong_return_types_are_named():
    pm = make_plugin_manager(autoload=False, extra=[("bad", plugin(router_sinks=lambda: 42))])
    with pytest.raises(PluginError, match="plugin 'bad' in hook router_sinks: must return a list"):
        build_registry(pm)
    pm = make_plugin_manager(autoload=False, extra=[("bad", plugin(router_sinks=lambda: [dict]))])
    with pytest.raises(PluginError, match="must return Sink subclasses"):
        build_registry(pm)


def test_duplicate_names_are_refused():
    class Twin(Sink):
        kind = "file"

    pm = make_plugin_manager(autoload=False, extra=[("twin", plugin(router_sinks=lambda: [Twin]))])
    with pytest.raises(
        PluginError,
        match="plugin 'twin' in hook router_sinks: sink 'file' is already registered by 'file'",
    ):
        build_registry(pm)


def test_invalid_schemas_and_delivery_defaults_are_refused():
    spec = ValidatorSpec("x", "*", {"a": {"type": "no-such-type"}})
    pm = make_plugin_manager(
        autoload=False, extra=[("bad", plugin(router_validators=lambda: [spec]))]
    )
    with pytest.raises(PluginError, match="invalid cerberus schema"):
        build_registry(pm)

    class Odd(Sink):
        kind = "odd"
        delivery_defaults = {"batch": 100}

    pm = make_plugin_manager(autoload=False, extra=[("odd", plugin(router_sinks=lambda: [Odd]))])
    with pytest.raises(
        PluginError, match=r"Odd.delivery_defaults is not valid: batch: must be of dict"
    ):
        build_registry(pm)


def test_a_source_needs_a_codec():
    class Orphan(Source):
        vendor = "nobody"
        routes = ()

    pm = make_plugin_manager(autoload=False, extra=[("o", plugin(router_sources=lambda: [Orphan]))])
    with pytest.raises(PluginError, match="needs a codec for vendor 'nobody'"):
        build_registry(pm)


def test_hookimpls_with_unknown_arguments_or_names_are_refused():
    with pytest.raises(PluginError, match="plugin 'bad'"):
        make_plugin_manager(autoload=False, extra=[("bad", plugin(router_sinks=lambda nope: []))])

    def router_no_such_hook():
        return []

    with pytest.raises(PluginError, match="unknown hook 'router_no_such_hook'"):
        make_plugin_manager(
            autoload=False, extra=[("bad", plugin(router_no_such_hook=router_no_such_hook))]
        )


@pytest.mark.hook("router_config_schema")
def test_router_config_schema_adds_a_plugins_section(sample):
    from router.testing.daemon import build_config

    schema_plugin = plugin(router_config_schema=lambda: {"greeting": {"type": "string"}})
    config, _ = build_config(
        {"plugins": {"hello": {"greeting": "hi"}}}, plugins=[("hello", schema_plugin)]
    )
    assert config.plugin_settings("hello") == {"greeting": "hi"}
    from router.errors import ConfigError

    with pytest.raises(ConfigError, match=r"plugins\.hello\.greting: unknown field"):
        build_config({"plugins": {"hello": {"greting": "hi"}}}, plugins=[("hello", schema_plugin)])


@pytest.mark.hook("router_startup", "router_shutdown")
async def test_router_startup_and_router_shutdown_are_called_once(tmp_path, sample, sample_config):
    from router.testing.daemon import running_daemon

    calls = []
    lifecycle = plugin(
        router_startup=lambda registry, config: calls.append(("startup", len(registry.sinks))),
        router_shutdown=lambda config: calls.append(("shutdown", config.file)),
    )
    async with running_daemon(
        sample_config, data_dir=tmp_path / "d", plugins=[*sample, ("life", lifecycle)]
    ):
        assert calls == [("startup", 6)]
    assert calls == [("startup", 6), ("shutdown", "<test>")]


@pytest.mark.hook("router_shutdown")
async def test_router_shutdown_failure_does_not_stop_the_others(tmp_path, sample, sample_config):
    from router.testing.daemon import running_daemon

    calls = []

    def failing():
        raise RuntimeError("cannot say goodbye")

    async with running_daemon(
        sample_config,
        data_dir=tmp_path / "d",
        plugins=[
            *sample,
            ("first", plugin(router_shutdown=lambda: calls.append("first"))),
            ("failing", plugin(router_shutdown=failing)),
            ("last", plugin(router_shutdown=lambda: calls.append("last"))),
        ],
    ) as rd:
        daemon = rd.daemon
    assert sorted(calls) == ["first", "last"]
    assert not daemon.ready
