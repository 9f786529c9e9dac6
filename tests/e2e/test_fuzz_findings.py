"""What fuzzing the ingest routes from /openapi.json found, one regression test each.

Each is a request a vendor's client may legally send that the router once
answered with a 5xx (tests/e2e/test_openapi_fuzz.py finds such requests).
"""

from __future__ import annotations

import copy
from pathlib import Path

import orjson
import pytest
import trio
from router_plugins.segmento.codec import SegmentoCodec

from router.testing.daemon import running_daemon

ROOT = Path(__file__).parents[2]
DEFAULT = (ROOT / "config" / "router.yaml").read_text()
PAYLOADS = ROOT / "tests" / "data" / "payloads"


@pytest.fixture
async def daemon(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default config writes ./data/events.ndjson
    async with running_daemon(DEFAULT, data_dir=tmp_path / "data") as rd:
        yield rd


async def events_written(tmp_path: Path, n: int) -> list[dict]:
    path = tmp_path / "data" / "events.ndjson"
    with trio.fail_after(10):
        while not path.exists() or len(path.read_text().splitlines()) < n:  # noqa: ASYNC110
            await trio.sleep(0.02)
    return [orjson.loads(line) for line in path.read_text().splitlines()]


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
