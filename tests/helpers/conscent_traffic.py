"""Conscent traffic for end-to-end tests: events, a concurrent load, what reached the upstream."""

from __future__ import annotations

import uuid

import httpx
import trio

from router.testing.upstream import FakeUpstream


def ping(user: str) -> dict:
    return {
        "clientId": "c",
        "eventType": "PING",
        "eventLocation": "PAGE",
        "anonId": str(uuid.uuid4()),
        "pingId": str(uuid.uuid4()),
        "active": 1,
        "userId": user,
    }


def delivered(upstream: FakeUpstream) -> set[str]:
    return {e["userId"] for r in upstream.accepted for e in r.json()["messageBody"]}


async def load(url: str, acked: list[str], clients: int, stop: trio.Event, prefix: str):
    """Post 5-event batches from ``clients`` tasks until ``stop``; record what got a 2xx."""

    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            i = 0
            while not stop.is_set():
                users = [f"{prefix}{n}-{i}-{j}" for j in range(5)]
                i += 1
                try:
                    r = await http.post(
                        "/collect/event", json={"messageBody": [ping(u) for u in users]}
                    )
                except httpx.TransportError:
                    return  # the daemon died under us: this batch was not acknowledged
                if r.status_code == 201:
                    acked.extend(users)

    async with trio.open_nursery() as nursery:
        for n in range(clients):
            nursery.start_soon(client, n)
