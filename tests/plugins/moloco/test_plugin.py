"""The moloco plugin: its hooks, called through a fresh plugin manager."""

from __future__ import annotations

import pluggy
import pytest
import router_plugins.moloco
from router_plugins.moloco.codec import MolocoCodec
from router_plugins.moloco.ingest import MolocoSource
from router_plugins.moloco.schema import EVENT_TYPES
from router_plugins.moloco.sink import MolocoSink

import router
import router.hookspecs
from router.validation import Validators


@pytest.fixture
def pm():
    pm = pluggy.PluginManager("router")
    pm.add_hookspecs(router.hookspecs)
    pm.register(router_plugins.moloco, name="moloco")
    return pm


@pytest.mark.hook("router_codecs")
def test_router_codecs_registers_the_moloco_codec(pm):
    (codecs,) = pm.hook.router_codecs()
    assert [type(c) for c in codecs] == [MolocoCodec]
    assert codecs[0].vendor == "moloco"


@pytest.mark.hook("router_validators")
def test_router_validators_cover_every_event_type_and_fallback(pm):
    (specs,) = pm.hook.router_validators()
    assert {s.vendor for s in specs} == {"moloco"}
    assert sorted(s.event_type for s in specs) == sorted([*EVENT_TYPES, "*"])
    assert all(s.allow_unknown for s in specs)
    assert all(s.require_any == (("user_id", "device.persistent_id", "custom_id"),) for s in specs)
    # Every spec compiles with cerberus.
    Validators(specs)


@pytest.mark.hook("router_sources")
def test_router_sources_registers_the_post_user_event_api(pm):
    (sources,) = pm.hook.router_sources()
    assert sources == [MolocoSource]
    (route,) = MolocoSource.routes
    assert (route.method, route.path, route.handler) == (
        "POST",
        "/rmp/event/v1/platforms/<platform>/userevents",
        None,
    )
    assert MolocoSource.vendor == "moloco"
    assert MolocoSource.events_field is None
    assert MolocoSource.credential_header == "x-api-key"
    assert MolocoSource.default_on_invalid == "reject"


@pytest.mark.hook("router_sinks")
def test_router_sinks_registers_the_moloco_sink(pm):
    (sinks,) = pm.hook.router_sinks()
    assert sinks == [MolocoSink]
    assert (MolocoSink.kind, MolocoSink.vendor, MolocoSink.max_batch_events) == (
        "moloco",
        "moloco",
        1,
    )
    assert MolocoSink.delivery_defaults["max_concurrency"] > 1


def test_plugin_module_exposes_only_hookimpls():
    hooks = {n for n in dir(router_plugins.moloco) if n.startswith("router_")}
    assert hooks == {"router_codecs", "router_validators", "router_sources", "router_sinks"}
    pm = pluggy.PluginManager("router")
    pm.add_hookspecs(router.hookspecs)
    pm.register(router_plugins.moloco, name="moloco")
    pm.check_pending()
