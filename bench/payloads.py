"""Request bodies for the benchmark workloads: valid, varied, deterministic."""

from __future__ import annotations

import uuid

import orjson

LOCATIONS = ["PAGE", "PAYWALL", "CONTENT_FLOW_LOGIN", "SSO_LOGIN", "POPUP", "SRP"]


def _uuid(i: int, salt: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{salt}-{i}"))


def conscent_event(i: int) -> dict:
    base = {
        "clientId": "6335a6e6b8a4f2f3c1e8d9a0",
        "eventLocation": LOCATIONS[i % 6],
        "anonId": _uuid(i % 37, "anon"),
    }
    kind = i % 4
    if kind == 0:
        return {
            **base,
            "eventType": "PING",
            "pingId": _uuid(i, "ping"),
            "active": i % 2,
            "userId": f"user-{i % 11}",
        }
    if kind == 1:
        return {**base, "eventType": "CLICK", "clickAction": "BUY_NOW", "userId": f"user-{i}"}
    if kind == 2:
        return {
            **base,
            "eventType": "PURCHASE",
            "userId": f"user-{i % 11}",
            "purchaseId": f"order-{i}",
        }
    return {**base, "eventType": "EXIT"}


def conscent_batch(n: int = 100) -> bytes:
    return orjson.dumps(
        {"messageBody": [conscent_event(i) for i in range(n)], "messageHeaders": {}}
    )


def segmento_event(i: int) -> dict:
    kind = i % 3
    base = {"visitor_id": f"9198{i:08d}", "event_timestamp": "2026-11-23 10:00:00"}
    if kind == 0:
        return {
            **base,
            "event_name": "product-viewed",
            "event_properties": {
                "product_id": f"P-{i}",
                "name": "Red shirt",
                "price": "12.50",
                "quantity": "1",
                "category": "shirts",
            },
        }
    if kind == 1:
        return {
            **base,
            "event_name": "add-to-cart",
            "event_properties": {
                "cart_id": f"cart-{i % 17}",
                "product_id": f"P-{i}",
                "price": "12.50",
                "quantity": "2",
            },
        }
    return {
        **base,
        "event_name": "page-view",
        "event_properties": {"title": "Red shirt | Acme", "url": f"https://shop.example.com/p/{i}"},
    }


def segmento_batch(n: int = 100) -> bytes:
    return orjson.dumps({"data": [segmento_event(i) for i in range(n)]})


def endu_event() -> bytes:
    return orjson.dumps(
        {
            "property_id": "D#1007491775344160808",
            "organization_id": "848WN4oEUgisKrV9dY9Ni6",
            "timestamp": "1672536219",
            "event_type": "ITEM_PURCHASED",
            "c_user_id": "59078598125872925",
            "p_user_id": "702877938567086080",
            "platform_type": "Discord",
            "event_data": {"item_id": "8258727671", "price": 12.5},
        }
    )


def moloco_event() -> bytes:
    return orjson.dumps(
        {
            "id": "01a2090f-ecc8-74a0-aa6c-0d92ca654a74",
            "event_type": "PAGE_VIEW",
            "timestamp": "1795448368328",
            "channel_type": "SITE",
            "custom_id": _uuid(1, "anon"),
            "page_id": "PAYWALL",
            "session_id": _uuid(1, "ping"),
        }
    )
