"""The segmento plugin passes the conformance suite every plugin runs."""

from __future__ import annotations

from pathlib import Path

import orjson
import router_plugins.segmento

from router.testing.conformance import Conformance, PluginUnderTest

SAMPLE = Path(__file__).parents[2] / "data" / "payloads" / "segmento" / "product-viewed.json"


class TestConformance(Conformance):
    plugin = PluginUnderTest(
        "segmento",
        router_plugins.segmento,
        sample=orjson.loads(SAMPLE.read_bytes()),
        sink_options={"api_key": "k"},
    )
