"""What fuzzing the ingest routes from /openapi.json found, one regression test each.

Each is a request a vendor's client may legally send that the router once
answered with a 5xx (tests/e2e/test_openapi_fuzz.py finds such requests).
"""

from __future__ import annotations

import copy

import orjson
from router_plugins.segmento.codec import SegmentoCodec

from tests.helpers.default_config import PAYLOADS, events_written

#: Segmento's product ``quantity`` and ``position`` are strings: any string.
HUGE = "9" * 30


async def test_segmento_quantity_beyond_64_bits_is_kept_as_sent(daemon, tmp_path) -> None:
    """Was a 500: the string became an int too large for the canonical event's JSON."""
    body = orjson.loads((PAYLOADS / "segmento" / "order-refunded.json").read_bytes())
    product = body["data"][0]["event_properties"]["products"][0]
    product["quantity"] = HUGE
    product["position"] = str(2**63)
    r = await daemon.client.post("/api/v5/segmento/user-events", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"accepted": 1, "failed": 0, "failed_events": []}
    (event,) = await events_written(tmp_path, 1)
    (item,) = event["items"]
    assert "quantity" not in item and "position" not in item
    assert item["extra"] == {"quantity": HUGE, "position": str(2**63)}


def test_segmento_quantity_beyond_64_bits_round_trips() -> None:
    codec = SegmentoCodec()
    raw = orjson.loads((PAYLOADS / "segmento" / "order-refunded.json").read_bytes())["data"][0]
    raw["event_properties"]["products"][0]["quantity"] = HUGE
    event = codec.decode(copy.deepcopy(raw), id="e-1", received_at=0, meta={})
    orjson.dumps(event.to_dict())
    encoded = codec.encode(event, {})
    assert encoded["event_properties"]["products"][0]["quantity"] == HUGE
