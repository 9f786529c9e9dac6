"""The example plugin's own tests, as a plugin author would write them."""

import router_example

from router.pluginmanager import make_plugin_manager
from router.registry import build_registry


def test_hook_router_sources_registers_the_tracking_route():
    registry = build_registry(
        make_plugin_manager(autoload=False, extra=[("example", router_example)])
    )
    assert registry.sources["example"].routes[0].path == "/example/track"
    assert "webhook" in registry.sinks


def test_round_trip():
    codec = router_example.TrackCodec()
    raw = {"event": "signup", "user": "u1", "props": {"plan": "pro"}}
    event = codec.decode(raw, id="e1", received_at=1, meta={})
    assert codec.encode(event, {}) == raw
