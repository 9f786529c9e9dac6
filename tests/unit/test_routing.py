"""router.routing: which events a route takes, and what a sink target makes of one."""

from __future__ import annotations

import httpx
import pytest

from router.config import RouteConfig
from router.event import Context, Event, Identity
from router.routing import Encoded, Failed, Route, SinkTarget, event_field
from router.spool import Spool
from router.testing.daemon import build_config
from tests.helpers.sample_plugin import SampleCodec, SampleSink


def event(type_="page_view", user="u1", **context):
    return Event(
        id="e1",
        type=type_,
        timestamp=1,
        received_at=1,
        vendor="sample",
        identity=Identity(user_id=user),
        context=Context(**context),
    )


@pytest.fixture
def validators(sample):
    _, registry = build_config(
        {
            "sources": {"in": {"plugin": "sample", "auth": "none"}},
            "sinks": {"out": {"plugin": "sample", "url": "http://127.0.0.1:9"}},
            "routes": [{"from": "in", "to": "out"}],
        },
        plugins=sample,
    )
    return registry.validators


@pytest.fixture
async def client():
    async with httpx.AsyncClient() as c:
        yield c


@pytest.fixture
async def queues(tmp_path):
    """Two real spool queues: ``plain``, and ``dedup`` with a de-duplication window."""
    spool = Spool(tmp_path / "spool.db")
    await spool.open([("plain", {}), ("dedup", {"dedup_window": 60.0})])
    yield spool.queues
    spool.close_db()


@pytest.fixture
def target(validators, client, queues):
    """``target(SinkClass, codec=…, dedup=…)``: a SinkTarget on a real queue."""

    def make(sink_cls, *, codec=None, dedup=False):
        sink = sink_cls("out", {"url": "http://127.0.0.1:9"}, client=client, codec=codec)
        return SinkTarget("out", sink, queues["dedup" if dedup else "plain"], validators)

    return make


def route(types=None, match=None):
    config = RouteConfig(sources=("in",), sinks=("out",), types=types, match=match or {})
    return Route(config, [])


def test_an_unfiltered_route_takes_everything():
    assert route().unfiltered and route().matches(event("anything"))


def test_a_type_filter_takes_only_its_types():
    r = route(types=frozenset({"purchase"}))
    assert r.matches(event("purchase")) and not r.matches(event("page_view"))


def test_a_field_match_takes_a_listed_value_at_a_dotted_path():
    r = route(match={"context.channel": ["app", "site"]})
    assert r.matches(event(channel="app"))
    assert not r.matches(event(channel="tv")) and not r.matches(event())


def test_event_field_reads_attributes_then_keys_and_none_when_absent():
    e = event(user="u9")
    e.properties["cart"] = {"id": "c1"}
    assert event_field(e, ("identity", "user_id")) == "u9"
    assert event_field(e, ("properties", "cart", "id")) == "c1"
    assert event_field(e, ("properties", "missing", "id")) is None


async def test_encode_gives_the_payload_of_a_valid_event(target):
    result = target(SampleSink, codec=SampleCodec()).encode(event())
    assert result == Encoded(b'{"kind":"view","user":"u1"}')


async def test_an_untranslatable_event_fails_with_the_reason_and_field(target):
    result = target(SampleSink, codec=SampleCodec()).encode(event("refund"))
    assert result == Failed("untranslatable", "sample: no sample kind for refund (field type)")


async def test_an_event_invalid_for_the_destination_fails_with_its_errors(target):
    result = target(SampleSink, codec=SampleCodec()).encode(event(user=""))
    assert isinstance(result, Failed) and result.code == "invalid_for_destination"
    assert result.reason.startswith("sample: ") and "user" in result.reason


class RaisingSink(SampleSink):
    def encode(self, event):
        raise KeyError("boom")


class NotJsonSink(SampleSink):
    def encode(self, event):
        return {"kind": "view", "user": "u1", "when": object()}


async def test_a_codec_bug_fails_one_event_as_a_plugin_error(target):
    result = target(RaisingSink, codec=SampleCodec()).encode(event())
    assert result == Failed("plugin_error", "sample codec raised KeyError: 'boom'")
    result = target(NotJsonSink, codec=SampleCodec()).encode(event())
    assert isinstance(result, Failed) and result.code == "plugin_error"
    assert "non-JSON" in result.reason


async def test_takes_as_is_only_same_vendor_passthrough_without_dedup(target):
    class Passing(SampleCodec):
        def passthrough(self, options):
            return True

    assert target(SampleSink, codec=Passing()).takes_as_is("sample")
    assert not target(SampleSink, codec=Passing()).takes_as_is("other")
    assert not target(SampleSink, codec=SampleCodec()).takes_as_is("sample")
    deduping = target(SampleSink, codec=Passing(), dedup=True)
    assert not deduping.takes_as_is("sample")
