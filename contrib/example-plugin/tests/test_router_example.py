"""The example plugin's own tests, as a plugin author would write them."""

import router_example

from router.testing.fixtures import registry_of


def test_hook_router_sources_registers_the_tracking_route():
    registry = registry_of([("example", router_example)])
    assert registry.sources["example"].routes[0].path == "/example/track"
    assert "webhook" in registry.sinks


def test_round_trip():
    codec = router_example.TrackCodec()
    raw = {"event": "signup", "user": "u1", "props": {"plan": "pro"}}
    event = codec.decode(raw, id="e1", received_at=1, meta={})
    assert codec.encode(event, {}) == raw


def test_round_trip_keeps_empty_and_absent_props_apart():
    codec = router_example.TrackCodec()
    for raw in ({"event": "a", "user": "u"}, {"event": "a", "user": "u", "props": {}}):
        event = codec.decode(raw, id="e1", received_at=1, meta={})
        assert codec.encode(event, {}) == raw
    assert codec.passthrough({})
