"""The example plugin passes the router's conformance suite, in three lines."""

import router_example

from router.testing.conformance import Conformance, PluginUnderTest


class TestConformance(Conformance):
    plugin = PluginUnderTest(
        "example",
        router_example,
        sample={"event": "signup", "user": "u1", "props": {"plan": "pro"}},
        sink_options={"url": "http://127.0.0.1:9/hook"},
    )
