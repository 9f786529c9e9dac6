"""All 12 cross-vendor relays end to end over real HTTP.

A client posts vendor A's documented example events to the daemon in A's own
format; a fake vendor-B server on loopback must receive exactly the
translated events (no more, no fewer, nothing malformed), with B's auth
header. Events B cannot express are dead-lettered with a reason instead.

"Exactly" is checked against the daemon's own canonical events: each route
also feeds a canonical file sink, and the expected B payloads are B's codec
applied to those (ids and receipt times are the daemon's).
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import orjson
import pytest
import trio

from router import Event, Untranslatable
from router.testing.daemon import build_config, running_daemon
from router.testing.upstream import FakeUpstream
from router.yamlsource import load_yaml

ROOT = Path(__file__).parents[2]
PAYLOADS = ROOT / "tests" / "data" / "payloads"
VENDORS = ("conscent", "segmento", "moloco", "endu")

#: How each vendor wraps events when we post to it, and where its sink puts them.
ENVELOPE = {"conscent": "messageBody", "segmento": "data", "moloco": None, "endu": None}
INGEST_PATH = {
    "conscent": "/collect/event",
    "segmento": "/api/v5/segmento/user-events",
    "moloco": "/rmp/event/v1/platforms/web/userevents",
    "endu": "/api/events/record",
}
#: Sink options for a relay into each vendor, and the auth header it must send.
SINK_OPTIONS = {
    "conscent": {
        "api_key": "conscent-key",
        "client_id": "relay-client",
        "type_map": {"page_view": "PING", "*": "CLICK"},
    },
    "segmento": {"api_key": "segmento-key"},
    "moloco": {
        "api_key": "moloco-key",
        "platform": "web",
        "channel_type": "SITE",
        "default_item_id": "relay-item",
        "unsupported_currency": "unknown",
        "type_map": {"*": "UNKNOWN_EVENT_TYPE"},
    },
    "endu": {
        "api_key": "endu-key",
        "property_id": "P#1",
        "organization_id": "org-1",
        "user_id_is_c_user_id": True,
        "fingerprint_from": ["anonymous_id", "persistent_id", "custom_id"],
    },
}
AUTH_HEADER = {
    "conscent": ("x-api-key", "conscent-key"),
    "segmento": ("authkey", "segmento-key"),
    "moloco": ("x-api-key", "moloco-key"),
    "endu": ("authorization", "Bearer endu-key"),
}
EXAMPLES = {
    ("conscent", "moloco"),
    ("conscent", "conscent"),
    ("endu", "conscent"),
    ("segmento", "endu"),
    ("moloco", "segmento"),
}


def example_events(vendor: str, registry) -> list[dict]:
    """Every valid event in the vendor's documented examples."""
    field = ENVELOPE[vendor]
    codec = registry.codecs[vendor]
    events = []
    for path in sorted((PAYLOADS / vendor).glob("*.json")):
        doc = orjson.loads(path.read_bytes())
        candidates = doc[field] if field and isinstance(doc, dict) and field in doc else [doc]
        for raw in candidates:
            if isinstance(raw, dict) and not registry.validators.check(
                vendor, codec.event_type(raw), raw
            ):
                events.append(raw)
    return events


def upstream_events(vendor: str, body: bytes) -> list[dict]:
    doc = orjson.loads(body)
    field = ENVELOPE[vendor]
    return doc[field] if field else [doc]


def relay_config(source: str, destination: str, url: str, tmp_path: Path) -> dict:
    """The shipped example for this direction if there is one, else a generated relay.

    Either way a canonical ``witness`` file sink is added to the route.
    """
    witness = {
        "plugin": "file",
        "path": str(tmp_path / "canonical.ndjson"),
        "batch": {"max_wait": 0.01},
    }
    if (source, destination) in EXAMPLES:
        path = ROOT / "config" / "examples" / f"{source}-to-{destination}.yaml"
        prefix = destination.upper()
        env = {f"{prefix}_URL": url, f"{prefix}_API_KEY": SINK_OPTIONS[destination]["api_key"]}
        loaded = load_yaml(path.read_text(), str(path), env)
        assert not loaded.problems, loaded.problems
        config = loaded.data
        config["sinks"][destination]["batch"] = {"max_wait": 0.01}
    else:
        config = {
            "sources": {source: {"plugin": source, "auth": "none"}},
            "sinks": {
                destination: {
                    "plugin": destination,
                    "url": url,
                    "batch": {"max_wait": 0.01},
                    **SINK_OPTIONS[destination],
                }
            },
            "routes": [{"from": source, "to": destination}],
        }
    config["sinks"]["witness"] = witness
    config["routes"][0]["to"] = [destination, "witness"]
    return config


async def post_all(client, vendor: str, events: list[dict]) -> None:
    field = ENVELOPE[vendor]
    if field:
        r = await client.post(INGEST_PATH[vendor], json={field: events})
        assert r.status_code in (200, 201, 202), r.text
        return
    for raw in events:
        r = await client.post(INGEST_PATH[vendor], json=raw)
        assert r.status_code == 200, r.text


DIRECTIONS = [(a, b) for a, b in itertools.permutations(VENDORS, 2)]


@pytest.mark.parametrize(
    ("source", "destination"), DIRECTIONS, ids=[f"{a}-to-{b}" for a, b in DIRECTIONS]
)
async def test_relay(tmp_path, source, destination):
    async with FakeUpstream.running() as upstream:
        config, registry = build_config(relay_config(source, destination, upstream.url, tmp_path))
        sent = example_events(source, registry)
        assert sent, f"no valid {source} examples"
        async with running_daemon(config, registry=registry, data_dir=tmp_path / "d") as rd:
            await post_all(rd.client, source, sent)
            with trio.fail_after(20):
                while rd.queue(destination).pending_events or (  # noqa: ASYNC110
                    rd.queue("witness").pending_events
                ):
                    await trio.sleep(0.02)
            accounts = rd.reconcile(destination)
            dead = accounts["dead_lettered"]

        # Every accepted event is either at the upstream or dead-lettered with a reason.
        assert accounts["balance"] == 0 and accounts["pending"] == 0
        assert accounts["accepted"] == len(sent)
        received = [e for r in upstream.accepted for e in upstream_events(destination, r.body)]
        assert len(received) + dead == len(sent)
        assert received, f"nothing of {source} reached {destination}"

        # Exactly the translated events: the destination codec applied to the canonical witness.
        canonical = [
            Event.from_dict(orjson.loads(line))
            for line in (tmp_path / "canonical.ndjson").read_text().splitlines()
        ]
        sink_options = config.sinks[destination].options
        codec = registry.codecs[destination]
        expected = []
        for event in canonical:
            try:
                out = codec.encode(event, sink_options)
            except Untranslatable:
                continue
            if not registry.validators.check(destination, codec.event_type(out), out):
                expected.append(out)
        assert Counter(map(canonical_json, received)) == Counter(map(canonical_json, expected))
        for event in received:
            assert not registry.validators.check(destination, codec.event_type(event), event)

        header, value = AUTH_HEADER[destination]
        assert all(r.headers.get(header) == value for r in upstream.accepted)
        if dead:
            from router.deadletters import DeadLetters

            with DeadLetters(tmp_path / "d") as dlq:
                letters = dlq.list(destination)
            assert len(letters) == dead and all(letter.reason for letter in letters)


def canonical_json(value) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


async def test_same_vendor_relay_queues_events_as_received(tmp_path, monkeypatch):
    """Conscent -> Conscent with no filter skips translation (the codec is never called)."""
    from router_plugins.conscent.codec import ConscentCodec

    def broken(self, *args, **kwargs):
        raise RuntimeError("decode must not run on the direct path")

    monkeypatch.setattr(ConscentCodec, "decode", broken)
    registry_config = {
        "sources": {"in": {"plugin": "conscent", "auth": "none"}},
        "sinks": {
            "out": {"plugin": "conscent", "url": "", "api_key": "k", "batch": {"max_wait": 0.01}}
        },
        "routes": [{"from": "in", "to": "out"}],
    }
    async with FakeUpstream.running() as upstream:
        registry_config["sinks"]["out"]["url"] = upstream.url
        config, registry = build_config(registry_config)
        sent = example_events("conscent", registry)
        async with running_daemon(config, registry=registry, data_dir=tmp_path / "d") as rd:
            await post_all(rd.client, "conscent", sent)
            with trio.fail_after(10):
                await upstream.wait_for(
                    lambda u: sum(len(r.json()["messageBody"]) for r in u.accepted) == len(sent)
                )
        received = [e for r in upstream.accepted for e in r.json()["messageBody"]]
        assert received == sent

        # A filter needs the canonical type: then the (broken) codec runs, and quarantines.
        registry_config["routes"][0]["filter"] = {"types": ["purchase"]}
        config, registry = build_config(registry_config)
        async with running_daemon(config, registry=registry, data_dir=tmp_path / "e") as rd:
            r = await rd.client.post("/collect/event", json={"messageBody": sent[:2]})
            assert r.status_code == 201
            total, _ = await rd.daemon.resources.quarantine.list("in")
            assert total == 2
