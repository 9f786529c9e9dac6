"""The endu plugin passes the conformance suite every plugin runs."""

from __future__ import annotations

from pathlib import Path

import orjson
import router_plugins.endu

from router.testing.conformance import Conformance, PluginUnderTest

SAMPLE = Path(__file__).parents[2] / "data" / "payloads" / "endu" / "blockchain.json"


class TestConformance(Conformance):
    plugin = PluginUnderTest(
        "endu",
        router_plugins.endu,
        sample=orjson.loads(SAMPLE.read_bytes()),
        sink_options={
            "api_key": "k",
            "property_id": "P#1",
            "organization_id": "o",
            "user_id_is_c_user_id": True,
            "fingerprint_from": ["anonymous_id"],
        },
    )
