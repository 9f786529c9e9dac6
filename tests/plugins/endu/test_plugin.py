"""The endu plugin: its hooks, called through a fresh plugin manager."""

from __future__ import annotations

import pluggy
import pytest
import router_plugins.endu
from router_plugins.endu.codec import EnduCodec
from router_plugins.endu.ingest import EnduSource
from router_plugins.endu.schema import DOCUMENTED_TYPES
from router_plugins.endu.sink import EnduSink

import router
import router.hookspecs


@pytest.fixture
def pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("router")
    pm.add_hookspecs(router.hookspecs)
    pm.register(router_plugins.endu, name="endu")
    pm.check_pending()
    return pm


@pytest.mark.hook("router_codecs")
def test_router_codecs_registers_the_endu_codec(pm):
    [codecs] = pm.hook.router_codecs()
    assert [type(c) for c in codecs] == [EnduCodec]
    assert codecs[0].vendor == "endu"


@pytest.mark.hook("router_validators")
def test_router_validators_cover_documented_types_and_fallback(pm):
    [specs] = pm.hook.router_validators()
    assert {s.vendor for s in specs} == {"endu"}
    assert sorted(s.event_type for s in specs) == sorted([*DOCUMENTED_TYPES, "*"])
    assert all(s.require_any for s in specs)


@pytest.mark.hook("router_sources")
def test_router_sources_registers_the_endu_source(pm):
    [sources] = pm.hook.router_sources()
    assert sources == [EnduSource]
    assert EnduSource.vendor == "endu"


@pytest.mark.hook("router_sinks")
def test_router_sinks_registers_the_endu_sink(pm):
    [sinks] = pm.hook.router_sinks()
    assert sinks == [EnduSink]
    assert (EnduSink.kind, EnduSink.vendor) == ("endu", "endu")


@pytest.mark.hook("router_config_schema")
def test_router_config_schema_not_implemented(pm):
    # The plugin has no plugin-wide options: everything is per source/sink.
    assert pm.hook.router_config_schema() == []
