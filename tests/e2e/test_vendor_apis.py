"""Each vendor's ingest API over real HTTP on the shipped default config (config/router.yaml).

Documented success status and body; errors in the vendor's own shape naming
the failing field; Segmento's failed-events listing; rate-limit headers.
"""

from __future__ import annotations

import orjson

from tests.helpers.default_config import events_written, payload


async def test_conscent(daemon, tmp_path):
    body = payload("conscent", "request.json")
    r = await daemon.client.post("/collect/event", json=body)
    assert r.status_code == 201
    records = r.json()
    assert len(records) == len(body["messageBody"])
    assert all(
        rec["headers"] == {} and orjson.loads(rec["value"]) == event
        for rec, event in zip(records, body["messageBody"], strict=True)
    )

    bad = {
        "messageBody": [
            body["messageBody"][0],
            {**body["messageBody"][0], "eventLocation": "NOWHERE"},
        ]
    }
    r = await daemon.client.post("/collect/event", json=bad)
    assert r.status_code == 400
    assert r.json() == {
        "error": "Bad Request",
        "statusCode": 400,
        "message": "messageBody[1].eventLocation: unallowed value NOWHERE",
    }
    r = await daemon.client.post("/collect/event", content=b"{")
    assert r.status_code == 400 and r.json()["statusCode"] == 400
    out = await events_written(tmp_path, len(body["messageBody"]))
    assert {e["vendor"] for e in out} == {"conscent"}


async def test_segmento_keeps_failed_events_and_lists_them(daemon):
    good = payload("segmento", "product-viewed.json")["data"][0]
    bad = {**good, "event_properties": {"name": "no product_id"}}
    r = await daemon.client.post("/api/v5/segmento/user-events", json={"data": [good, bad]})
    assert r.status_code == 200
    data = r.json()["data"]
    assert (data["accepted"], data["failed"]) == (1, 1)
    assert data["failed_events"][0]["index"] == 1
    assert "product_id" in data["failed_events"][0]["reason"]

    r = await daemon.client.get("/api/v5/segmento/user-events/failed", params={"per_page": 10})
    assert r.status_code == 200
    listing = r.json()["data"]
    assert listing["total"] == 1
    assert listing["failed_events"][0]["event"] == bad


async def test_moloco(daemon):
    event = payload("moloco", "purchase.json")
    path = "/rmp/event/v1/platforms/web/userevents"
    r = await daemon.client.post(path, json=event)
    assert r.status_code == 200 and r.json() == {}
    r = await daemon.client.post(path, json={**event, "channel_type": "TV"})
    assert r.status_code == 400
    status = r.json()
    assert status["code"] == 3 and status["details"] == []
    assert "channel_type" in status["message"]
    without_items = {k: v for k, v in event.items() if k != "items"}
    r = await daemon.client.post(path, json=without_items)
    assert r.status_code == 400 and "items" in r.json()["message"]


async def test_endu(daemon):
    event = payload("endu", "blockchain.json")
    r = await daemon.client.post("/api/events/record", json=event)
    assert r.status_code == 200 and r.content == b""
    r = await daemon.client.post(
        "/api/events/record", json={k: v for k, v in event.items() if k != "blockchain"}
    )
    assert r.status_code == 400
    error = r.json()
    assert error["success"] is False and error["error"]["code"] == 400
    assert (
        "at least one of p_user_id, c_user_id, blockchain, fingerprint"
        in (error["error"]["message"])
    )
