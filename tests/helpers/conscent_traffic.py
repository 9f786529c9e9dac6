"""Conscent traffic for end-to-end tests: a relay config, events, a load, what was delivered."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import trio

from router.testing.upstream import FakeUpstream


def relay_config(
    tmp_path: Path,
    upstream_url: str,
    *,
    name: str = "router",
    level: str = "info",
    redis: dict | None = None,
    **sink: object,
) -> str:
    """Write ``<name>.yaml``, conscent source -> conscent sink at ``upstream_url``; its path.

    ``sink`` adds or replaces sink options (``None`` removes one); ``redis`` is the redis section.
    """
    options = {
        "plugin": "conscent",
        "url": upstream_url,
        "api_key": "k",
        "batch": {"max_events": 20, "max_wait": 0.01},
        "retry": {"initial_backoff": 0.02, "max_backoff": 0.5, "max_attempts": 1000},
        **sink,
    }
    # JSON values are YAML flow values, so each option is one line of the file.
    lines = [f"logging: {{level: {level}, format: json}}", "server: {shutdown_timeout: 2}"]
    if redis is not None:
        lines.append(f"redis: {json.dumps(redis)}")
    lines += ["sources:", "  conscent: {plugin: conscent, auth: none}", "sinks:", "  conscent:"]
    lines += [
        f"    {key}: {json.dumps(value)}" for key, value in options.items() if value is not None
    ]
    lines.append("routes: [{from: conscent, to: conscent}]")
    path = tmp_path / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


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
