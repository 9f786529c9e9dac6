"""The Segment plugin passes the router's conformance suite."""

from router.testing.conformance import Conformance, PluginUnderTest

import router_segment

TRACK = {
    "type": "track",
    "userId": "u-1",
    "event": "Order Completed",
    "properties": {"order_id": "o-1", "revenue": 12.5, "currency": "EUR"},
    "timestamp": "2026-01-02T03:04:05.678Z",
    "messageId": "m-1",
}


class TestConformance(Conformance):
    plugin = PluginUnderTest(
        "segment",
        router_segment,
        sample={"batch": [TRACK, {**TRACK, "messageId": "m-2"}]},
        path="/v1/batch",
        sink_options={"write_key": "wk-out"},
    )
