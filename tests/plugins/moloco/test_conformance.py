"""The moloco plugin passes the conformance suite every plugin runs."""

from __future__ import annotations

from pathlib import Path

import orjson
import router_plugins.moloco

from router.testing.conformance import Conformance, PluginUnderTest

SAMPLE = Path(__file__).parents[2] / "data" / "payloads" / "moloco" / "purchase.json"


class TestConformance(Conformance):
    plugin = PluginUnderTest(
        "moloco",
        router_plugins.moloco,
        sample=orjson.loads(SAMPLE.read_bytes()),
        path="/rmp/event/v1/platforms/web/userevents",
        sink_options={"api_key": "k", "platform": "web"},
    )
