"""The segmento plugin's hookimpls, called through a fresh plugin manager."""

from __future__ import annotations

import json
from pathlib import Path

import pluggy
import pytest
import router_plugins.segmento
from router_plugins.segmento.codec import SegmentoCodec
from router_plugins.segmento.ingest import SegmentoSource
from router_plugins.segmento.schema import DEFAULT_EVENTS
from router_plugins.segmento.sink import SegmentoSink

import router
import router.hookspecs
from router.validation import Validators

PAYLOADS = Path(__file__).parents[2] / "data" / "payloads" / "segmento"


@pytest.fixture
def pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("router")
    pm.add_hookspecs(router.hookspecs)
    pm.register(router_plugins.segmento, name="segmento")
    return pm


def _flat(results):
    return [obj for result in results for obj in result]


@pytest.mark.hook("router_codecs")
def test_router_codecs_registers_one_segmento_codec(pm):
    codecs = _flat(pm.hook.router_codecs())
    assert len(codecs) == 1
    assert isinstance(codecs[0], SegmentoCodec)
    assert isinstance(codecs[0], router.Codec)
    assert codecs[0].vendor == "segmento"


@pytest.mark.hook("router_validators")
def test_router_validators_registers_every_default_event_and_a_fallback(pm):
    specs = _flat(pm.hook.router_validators())
    assert all(isinstance(spec, router.ValidatorSpec) for spec in specs)
    assert {spec.vendor for spec in specs} == {"segmento"}
    types = [spec.event_type for spec in specs]
    assert sorted(types) == sorted([*DEFAULT_EVENTS, "*"])
    assert Validators(specs).event_types("segmento") == sorted(DEFAULT_EVENTS)


@pytest.mark.hook("router_validators")
def test_router_validators_accept_every_payload_example(pm):
    validators = Validators(_flat(pm.hook.router_validators()))
    codec = SegmentoCodec()
    paths = sorted(PAYLOADS.glob("*.json"))
    assert len(paths) >= len(DEFAULT_EVENTS) + 1
    for path in paths:
        for event in json.loads(path.read_text())["data"]:
            assert validators.check("segmento", codec.event_type(event), event) == [], path.name


@pytest.mark.hook("router_sources")
def test_router_sources_registers_the_segmento_source(pm):
    sources = _flat(pm.hook.router_sources())
    assert sources == [SegmentoSource]
    assert issubclass(sources[0], router.Source)
    assert sources[0].vendor == "segmento"


@pytest.mark.hook("router_sinks")
def test_router_sinks_registers_the_segmento_sink(pm):
    sinks = _flat(pm.hook.router_sinks())
    assert sinks == [SegmentoSink]
    assert issubclass(sinks[0], router.Sink)
    assert (sinks[0].kind, sinks[0].vendor) == ("segmento", "segmento")


def test_plugin_has_no_config_schema_hook(pm):
    # Every option is per source or per sink; nothing plugin-wide.
    assert pm.hook.router_config_schema() == []
