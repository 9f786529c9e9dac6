"""The conscent plugin passes the conformance suite every plugin runs."""

from __future__ import annotations

from pathlib import Path

import orjson
import router_plugins.conscent

from router.testing.conformance import Conformance, PluginUnderTest

SAMPLE = Path(__file__).parents[2] / "data" / "payloads" / "conscent" / "request.json"


class TestConformance(Conformance):
    plugin = PluginUnderTest(
        "conscent",
        router_plugins.conscent,
        sample=orjson.loads(SAMPLE.read_bytes()),
        sink_options={"api_key": "k", "client_id": "relay", "default_event_location": "PAYWALL"},
    )
