"""SourceRuntime: the errors it renders, their headers and their context."""

from __future__ import annotations

import copy

import orjson
import pytest
import trio
from structlog.testing import capture_logs

from router.errors import Overloaded, PluginFailure, RouterError
from router.testing.daemon import running_daemon
from router.testing.upstream import FakeUpstream

BODY = {"events": [{"kind": "view", "user": "u"}]}


@pytest.fixture
async def limited(tmp_path, sample, sample_config):
    sample_config["sources"]["in"]["rate_limit"] = {"rate": 0.001, "burst": 100}
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        yield rd


async def test_an_error_a_plugin_raises_again_gets_each_requests_own_rate_limit_headers(limited):
    # One instance for every request: the pipeline used to write the first
    # request's rate-limit headers into it, and every later reply sent those.
    refused = Overloaded("downstream is busy", headers={"Retry-After": "3"})

    def accepted(request, result):
        raise refused

    limited.source("in").source.accepted = accepted
    first = await limited.client.post("/sample/events", json=BODY)
    second = await limited.client.post(
        "/sample/events", json=BODY, headers={"X-Request-Id": "second"}
    )
    assert first.status_code == second.status_code == 503
    assert second.json() == {"sample_error": "downstream is busy"}
    assert second.headers["retry-after"] == "3"
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in (first, second)]
    assert remaining[1] < remaining[0]
    assert refused.headers == {"Retry-After": "3"}
    # The context of the last request it answered.
    assert refused.source == "in" and refused.request_id == "second"


async def test_a_plugin_failure_is_in_the_error_tree_and_logged_with_its_hook_and_request(
    limited,
):
    assert issubclass(PluginFailure, RouterError)

    def accepted(request, result):
        raise ValueError("plugin bug")

    limited.source("in").source.accepted = accepted
    with capture_logs() as logs:
        r = await limited.client.post("/sample/events", json=BODY, headers={"X-Request-Id": "r7"})
    assert r.status_code == 500
    assert r.json() == {"sample_error": "the sample plugin failed while handling the request"}
    assert "x-ratelimit-remaining" in r.headers
    [line] = [entry for entry in logs if entry["event"] == "ingest.plugin_error"]
    assert line["hook"] == "accepted" and line["request_id"] == "r7"
    assert line["source"] == "in" and "ValueError: plugin bug" in line["error"]


def test_old_import_places_still_work():
    from router import errors, ingest, translate

    assert ingest.PluginFailure is errors.PluginFailure
    assert translate.UnknownVendor is errors.UnknownVendor
    assert issubclass(errors.UnknownVendor, errors.UsageError)


RELAY = {
    "sources": {"c": {"plugin": "conscent", "auth": "none"}},
    "sinks": {
        name: {"plugin": plugin, "url": "http://127.0.0.1:9/", "api_key": "k"}
        for name, plugin in (("same", "conscent"), ("other", "conscent"), ("seg", "segmento"))
    },
    # The same sink twice, and a translating one: each event goes to each sink once.
    "routes": [{"from": "c", "to": ["same", "seg"]}, {"from": "c", "to": ["same", "other"]}],
}
CONSCENT_EVENTS = [
    {
        "clientId": "6335a6e6b8a4f2f3c1e8d9a0",
        "eventLocation": "PAGE",
        "anonId": "0b0b9a46-7f4c-4a3e-9d5e-1c2f3a4b5c6d",
        "eventType": kind,
        **({"clickAction": "BUY_NOW"} if kind == "CLICK" else {}),
    }
    for kind in ("EXIT", "CLICK", "EXIT")
]


async def test_unfiltered_routes_put_what_the_per_event_routing_puts(tmp_path):
    async with running_daemon(RELAY, data_dir=tmp_path / "d") as rd:
        runtime = rd.source("c")
        assert runtime._every_event_to is not None  # the one-pass path is the one taken
        codec = runtime.codec
        events = [
            (event.id, raw, event)
            for i, raw in enumerate(CONSCENT_EVENTS)
            if (event := codec.decode(raw, id=f"id-{i}", received_at=0, meta={}))
        ]
        fast = runtime._route(events)
        runtime._every_event_to = None
        slow = runtime._route(events)

    def named(puts):
        return {target.name: entries for target, entries in puts.items()}

    assert named(fast[0]) == named(slow[0])
    assert sorted(named(fast[0])) == ["other", "same", "seg"]
    assert [i for i, _ in named(fast[0])["same"]] == ["id-0", "id-1", "id-2"]
    assert fast[1] == slow[1] == {}
    # The as-is encoding comes back for the reply's echo, event by event.
    assert fast[2] == [orjson.dumps(raw) for raw in CONSCENT_EVENTS]


async def test_the_conscent_echo_is_the_event_as_delivered(tmp_path):
    async with FakeUpstream.running() as up:
        config = copy.deepcopy(RELAY)
        config["sinks"]["same"]["url"] = up.url
        config["routes"] = [{"from": "c", "to": "same"}]
        async with running_daemon(config, data_dir=tmp_path / "d") as rd:
            r = await rd.client.post(
                "/collect/event", json={"messageBody": CONSCENT_EVENTS, "messageHeaders": {}}
            )
            assert r.status_code == 201
            with trio.fail_after(10):
                await up.wait_for(1)
    values = [record["value"].encode() for record in r.json()]
    assert [orjson.loads(v) for v in values] == CONSCENT_EVENTS
    # The bytes stored and sent are the bytes echoed.
    assert all(v in up.requests[0].body for v in values)
