"""The Segment plugin's own tests: the API's envelope, limits and a relay end to end."""

import base64

import pytest
import trio
from router import BadRequest, IngestRequest, PayloadTooLarge
from router.testing.daemon import running_daemon
from router.testing.upstream import FakeUpstream, Reply

import router_segment
from router_segment.codec import SegmentCodec
from router_segment.source import MAX_EVENT_BYTES, SegmentSource

PLUGIN = [("segment", router_segment)]


def request(path: str, body: bytes = b"{}") -> IngestRequest:
    return IngestRequest("POST", path, {}, body)


def test_a_single_call_takes_its_type_from_the_path_and_drops_the_write_key():
    source = SegmentSource("in", {})
    body = {"userId": "u", "event": "Signed Up", "writeKey": "wk"}
    envelope = source.split(request("/v1/track"), body)
    assert envelope.events == [{"userId": "u", "event": "Signed Up", "type": "track"}]
    with pytest.raises(BadRequest, match="post it to /v1/page"):
        source.split(request("/v1/track"), {"type": "page", "userId": "u"})


def test_the_32_kb_and_500_kb_limits():
    source = SegmentSource("in", {})
    with pytest.raises(PayloadTooLarge):
        source.split(
            request("/v1/track", b" " * (MAX_EVENT_BYTES + 1)), {"userId": "u"}
        )
    big = {
        "type": "track",
        "userId": "u",
        "event": "x",
        "properties": {"p": "y" * MAX_EVENT_BYTES},
    }
    with pytest.raises(PayloadTooLarge, match=r"batch\[1\]"):
        source.split(
            request("/v1/batch"), {"batch": [{"type": "page", "userId": "u"}, big]}
        )


def test_spec_names_map_to_canonical_types_and_back():
    codec = SegmentCodec()
    raw = {"type": "track", "userId": "u", "event": "Order Completed", "properties": {}}
    event = codec.decode(raw, id="e", received_at=5, meta={})
    assert (event.type, event.custom, event.timestamp) == ("purchase", False, 5)
    assert codec.encode(event, {}) == raw
    assert (
        codec.encode(event, {"type_map": {"purchase": "Checkout"}})["event"]
        == "Checkout"
    )


async def test_relay_with_the_write_key_as_basic_user(tmp_path):
    config = {
        "sources": {"in": {"plugin": "segment", "auth": {"keys": ["wk-in"]}}},
        "sinks": {
            "out": {
                "plugin": "segment",
                "url": "http://127.0.0.1:1",
                "write_key": "wk-out",
                "batch": {"max_wait": 0.01},
            }
        },
        "routes": [{"from": "in", "to": "out"}],
    }
    async with FakeUpstream.running(default=Reply(200, {"success": True})) as upstream:
        config["sinks"]["out"]["url"] = upstream.url
        async with running_daemon(config, data_dir=tmp_path, plugins=PLUGIN) as rd:
            call = {"userId": "u-1", "event": "Signed Up"}
            r = await rd.client.post("/v1/track", json=call, auth=("wk-in", ""))
            assert (r.status_code, r.json()) == (200, {"success": True})
            refused = await rd.client.post("/v1/track", json=call, auth=("nope", ""))
            assert refused.status_code == 403 and refused.json()["success"] is False
            with trio.fail_after(10):
                await upstream.wait_for(1)
    (sent,) = upstream.requests
    assert sent.path == "/v1/batch"
    assert (
        sent.headers["authorization"]
        == "Basic " + base64.b64encode(b"wk-out:").decode()
    )
    assert sent.json() == {"batch": [{**call, "type": "track"}]}


async def test_a_route_moved_by_paths_keeps_its_call_type_and_batch_errors_name_the_event(
    tmp_path,
):
    config = {
        "sources": {
            "in": {"plugin": "segment", "auth": "none", "paths": {"track": "/t"}}
        },
        "sinks": {"out": {"plugin": "file", "path": str(tmp_path / "out.ndjson")}},
        "routes": [{"from": "in", "to": "out"}],
    }
    async with running_daemon(config, data_dir=tmp_path / "d", plugins=PLUGIN) as rd:
        r = await rd.client.post("/t", json={"userId": "u-1", "event": "Signed Up"})
        assert (r.status_code, r.json()) == (200, {"success": True})
        bad = {
            "batch": [{"type": "track", "userId": "u", "event": "x"}, {"type": "track"}]
        }
        r = await rd.client.post("/v1/batch", json=bad)
        assert r.status_code == 400 and r.json()["message"].startswith("batch[1].")
