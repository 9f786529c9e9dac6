"""``router quarantine``: list, purge and replay the events a source quarantined.

Replay is to the quarantine what ``router dlq replay`` is to dead letters:
each chosen event, unchanged or as fixed in a file (``quarantine list``'s
NDJSON, edited), is checked again with the source vendor's validators; the
valid ones are posted to the running daemon's ingest route in the vendor's
own format, so they go through the whole pipeline (validation included) as if
the client had sent them, and leave the quarantine once it answers 2xx. The
still invalid ones stay, with their current errors.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from router.config import RouterConfig
from router.errors import StorageError, UsageError
from router.loader import load
from router.quarantine import Quarantine, QuarantinedEvent
from router.registry import Registry

__all__ = ["ReplayRefused", "command", "replay"]

#: Events per request for a source whose requests carry a list of events.
REPLAY_CHUNK = 100


class ReplayRefused(UsageError):
    """The daemon did not take replayed events; the message has its answer."""


def command(args: argparse.Namespace) -> int:
    """``router quarantine list|purge|replay``; the exit code."""
    if args.action == "purge" and (args.source is None) == (not args.all):
        raise UsageError(
            "purge needs a SOURCE or --all, not both"
            if args.all
            else "purge needs a SOURCE or --all (every source's events)"
        )
    config = registry = None
    if args.action == "replay" or not args.data_dir:
        config, registry = load(args.config)
    data_dir = Path(args.data_dir) if args.data_dir else config.server.data_dir
    path = data_dir / "quarantine.db"
    if not path.exists():
        raise UsageError(f"no quarantine at {path}: not a data dir a router has run on")
    store = Quarantine(path)
    try:
        if args.action == "list":
            total, page = store.list_sync(args.source, args.offset, args.limit)
            for item in page:
                print(orjson.dumps(item.to_dict()).decode())
            print(f"{total} quarantined events", file=sys.stderr)
        elif args.action == "purge":
            print(f"purged {store.purge_sync(args.source)} quarantined events", file=sys.stderr)
        else:
            fixed = _fixed(args.file) if args.file else {}
            url = args.url or f"http://{config.server.bind}"
            headers = dict(_header(h) for h in args.header)
            ids = args.id or list(fixed) or None  # a file replays the events it fixes
            done, invalid = replay(
                store, config, registry, args.source, ids, fixed, url, headers, args.path
            )
            print(f"replayed {done} quarantined events, {invalid} still invalid", file=sys.stderr)
            return 1 if invalid else 0
    except sqlite3.Error as exc:  # the database failed mid-command (disk full, damaged page)
        from router.storage import describe

        raise StorageError(describe(path, exc, what="quarantine")) from exc
    finally:
        store.close()
    return 0


def replay(
    store: Quarantine,
    config: RouterConfig,
    registry: Registry,
    source: str | None,
    ids: Sequence[int] | None,
    fixed: Mapping[int, Any],
    url: str,
    headers: Mapping[str, str],
    path: str | None = None,
) -> tuple[int, int]:
    """Re-check and re-submit quarantined events; ``(replayed, still invalid)``.

    :raises ReplayRefused: if the daemon answers other than 2xx (what was
        accepted before is out of the quarantine; the rest stays).
    """
    if source is not None and source not in config.sources:
        known = ", ".join(sorted(config.sources)) or "none"
        raise UsageError(f"no source {source!r} in {config.file} (sources: {known})")
    items = store.get_sync(ids) if ids else store.list_sync(source, 0, 2**62)[1]
    items = [i for i in items if source is None or i.source == source]
    valid: dict[str, list[QuarantinedEvent]] = {}
    invalid = 0
    for item in items:
        if item.source not in config.sources:
            continue  # a source no longer configured: left as it is
        event = fixed.get(item.seq, item.event)
        vendor = config.sources[item.source].plugin
        codec = registry.codecs[vendor]
        errors = registry.validators.check(vendor, codec.event_type(event), event)
        if errors:
            invalid += 1
            store.update_sync(item.seq, event, [str(e) for e in errors])
        else:
            valid.setdefault(item.source, []).append(
                QuarantinedEvent(item.seq, item.source, item.received_at, event, [])
            )
    done = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for name, events in valid.items():
            done += _submit(client, config, registry, name, events, store, headers, path)
    return done, invalid


def _submit(
    client: httpx.Client,
    config: RouterConfig,
    registry: Registry,
    name: str,
    events: list[QuarantinedEvent],
    store: Quarantine,
    headers: Mapping[str, str],
    path: str | None,
) -> int:
    source = config.sources[name]
    cls = registry.sources[source.plugin]
    if path is None:
        route = next(r for r in cls.routes if r.handler is None)
        path = source.prefix + source.paths.get(route.name, route.path)
        if "<" in path:
            raise UsageError(f"the route {path} of source {name!r} has parameters; give --path")
    field = cls.events_field
    size = REPLAY_CHUNK if field else 1
    done = 0
    for start in range(0, len(events), size):
        chunk = events[start : start + size]
        body = {field: [e.event for e in chunk]} if field else chunk[0].event
        try:
            response = client.post(
                path,
                content=orjson.dumps(body),
                headers={"content-type": "application/json", **headers},
            )
        except httpx.HTTPError as exc:
            raise ReplayRefused(f"cannot reach the router at {client.base_url}: {exc}") from exc
        if not response.is_success:
            raise ReplayRefused(
                f"the router answered {response.status_code} to {path} after {done} replayed "
                f"events: {response.text[:200]}"
            )
        store.delete_sync([e.seq for e in chunk])
        done += len(chunk)
    return done


def _fixed(path: str) -> dict[int, Any]:
    """``id -> event`` from NDJSON lines as ``router quarantine list`` prints them."""
    fixed: dict[int, Any] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise UsageError(f"{path}:{number}: invalid JSON: {exc}") from None
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("id"), int)
            or ("event" not in value)
        ):
            raise UsageError(f'{path}:{number}: expected {{"id": N, "event": {{...}}}}')
        fixed[value["id"]] = value["event"]
    return fixed


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise UsageError(f"--header expects NAME:VALUE, got {text!r}")
    return name.strip(), value.strip()
