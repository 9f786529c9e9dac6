"""The conscent plugin: its hooks, called through a fresh plugin manager."""

from __future__ import annotations

import pluggy
import pytest
import router_plugins.conscent
from router_plugins.conscent.codec import ConscentCodec
from router_plugins.conscent.ingest import ConscentSource
from router_plugins.conscent.schema import EVENT_TYPES
from router_plugins.conscent.sink import ConscentSink

import router
import router.hookspecs
from router.validation import Validators


@pytest.fixture
def pm():
    pm = pluggy.PluginManager("router")
    pm.add_hookspecs(router.hookspecs)
    pm.register(router_plugins.conscent, name="conscent")
    return pm


@pytest.mark.hook("router_codecs")
def test_router_codecs_registers_the_conscent_codec(pm):
    codecs = [c for result in pm.hook.router_codecs() for c in result]
    assert [type(c) for c in codecs] == [ConscentCodec]
    assert codecs[0].vendor == "conscent"


@pytest.mark.hook("router_validators")
def test_router_validators_one_spec_per_type_and_a_fallback(pm):
    specs = [s for result in pm.hook.router_validators() for s in result]
    assert {s.vendor for s in specs} == {"conscent"}
    assert sorted(s.event_type for s in specs) == sorted([*EVENT_TYPES, "*"])
    assert Validators(specs).event_types("conscent") == sorted(EVENT_TYPES)


@pytest.mark.hook("router_sources")
def test_router_sources_registers_the_collect_event_api(pm):
    sources = [s for result in pm.hook.router_sources() for s in result]
    assert sources == [ConscentSource]
    source = sources[0]
    assert source.vendor == "conscent"
    assert [(r.method, r.path, r.name, r.handler) for r in source.routes] == [
        ("POST", "/collect/event", "ingest", None)
    ]
    assert source.events_field == "messageBody"
    assert source.default_on_invalid == "reject"
    assert source.credential_header is None
    assert source.rate_limit_keys == ("client_id",)


@pytest.mark.hook("router_sinks")
def test_router_sinks_registers_the_conscent_sink(pm):
    sinks = [s for result in pm.hook.router_sinks() for s in result]
    assert sinks == [ConscentSink]
    assert sinks[0].kind == sinks[0].vendor == "conscent"
    assert sinks[0].max_batch_events == 1000
    assert sinks[0].delivery_defaults["batch"]["max_events"] == 500
    assert sinks[0].delivery_defaults["batch"]["max_events"] <= sinks[0].max_batch_events


def test_hooks_take_no_config_argument(pm):
    for name in ("router_codecs", "router_validators", "router_sources", "router_sinks"):
        (impl,) = getattr(pm.hook, name).get_hookimpls()
        assert impl.argnames == ()
