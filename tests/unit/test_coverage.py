"""Translation coverage in `router check`, held to what the codecs actually do.

For every pair of vendors, with no sink options and with a relay's options,
each event type the coverage calls translatable must translate for every
generated valid event of that type, and each type it calls dead-lettered
must be dead-lettered for every one (events from the vendors' own schemas,
``router.testing.strategies.valid_for_spec``). Timestamps are set to a
present-day time: the coverage is about types and fields, not value ranges.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from router import Untranslatable
from router.cli import main
from router.coverage import CUSTOM, DEAD, DEPENDS, TRANSLATES, route_coverage
from router.pluginmanager import make_plugin_manager
from router.registry import build_registry
from router.testing.strategies import valid_for_spec

ROOT = Path(__file__).parents[2]
REGISTRY = build_registry(make_plugin_manager(autoload=False))
VENDORS = ("conscent", "segmento", "moloco", "endu")
#: Sink options of a relay into each vendor (as in tests/e2e/test_relays.py).
#: The field that holds each vendor's event type.
TYPE_FIELD = {
    "conscent": "eventType",
    "segmento": "event_name",
    "moloco": "event_type",
    "endu": "event_type",
}
RELAY_OPTIONS = {
    "conscent": {"client_id": "relay", "type_map": {"page_view": "PING", "*": "CLICK"}},
    "segmento": {"type_map": {"add_to_cart": "x-add-to-cart"}},
    "moloco": {
        "channel_type": "SITE",
        "default_item_id": "item",
        "unsupported_currency": "unknown",
        "type_map": {"heartbeat": "PAGE_VIEW", "*": "UNKNOWN_EVENT_TYPE"},
    },
    "endu": {"property_id": "P", "organization_id": "O", "user_id_is_c_user_id": True},
}
CASES = [
    (source, sink, name, options)
    for source, sink in itertools.product(VENDORS, VENDORS)
    for name, options in (("no options", {}), ("relay options", RELAY_OPTIONS[sink]))
]


def events_of(vendor: str, source_type: str):
    """Valid events of one type (any custom type for the custom row)."""
    specs = REGISTRY.validators.specs
    spec = specs.get((vendor, source_type)) or specs[(vendor, "*")]
    codec = REGISTRY.codecs[vendor]

    def fitted(raw):
        raw = copy.deepcopy(raw)
        if source_type != CUSTOM:
            raw[TYPE_FIELD[vendor]] = source_type  # a spec need not fix the type's name
        return raw

    def wanted(raw):
        event_type = codec.event_type(raw)
        if source_type == CUSTOM:
            if event_type is None or event_type.upper() in codec.decoded_types:
                return False
            if event_type in codec.decoded_types:
                return False
        elif event_type != source_type:
            return False
        return not REGISTRY.validators.check(vendor, event_type, raw)

    return valid_for_spec(spec).map(fitted).filter(wanted)


def translates(source: str, sink: str, options, raw) -> bool:
    """What the daemon's ingest does (SinkTarget.encode): encode, then validate the result."""
    src, dst = REGISTRY.codecs[source], REGISTRY.codecs[sink]
    if source == sink and dst.passthrough(options):
        return True  # queued as received
    event = src.decode(raw, id="0190d5a0-0000-7000-8000-000000000000", received_at=1, meta={})
    # Coverage speaks of types and fields, not of value ranges: a time in 1953 or
    # 9999 that a vendor refuses is not what it claims to predict.
    event.timestamp = 1_700_000_000_000
    try:
        out = dst.encode(event, options)
    except Untranslatable:
        return False
    return not REGISTRY.validators.check(sink, dst.event_type(out), out)


@pytest.mark.parametrize(
    ("source", "sink", "name", "options"), CASES, ids=[f"{s}-{d}-{n}" for s, d, n, _ in CASES]
)
def test_coverage_claims_hold_for_generated_events(source, sink, name, options):
    rows = route_coverage(REGISTRY.codecs[source], REGISTRY.codecs[sink], options)
    claimed = [r for r in rows if r.status in (TRANSLATES, DEAD)]
    assert rows
    for row in claimed:
        check_row(source, sink, options, row)


def check_row(source, sink, options, row):
    @settings(
        max_examples=8,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(events_of(source, row.source_type))
    def check(raw):
        assert translates(source, sink, options, raw) == (row.status == TRANSLATES), row

    check()


def test_the_issue_example_conscent_to_moloco_without_options():
    rows = {
        r.source_type: r
        for r in route_coverage(
            REGISTRY.codecs["conscent"], REGISTRY.codecs["moloco"], {"channel_type": "SITE"}
        )
    }
    for name in ("PING", "CLICK", "EXIT"):
        assert rows[name].status == DEAD and "type_map" in rows[name].fix
    assert rows["PURCHASE"].status == DEAD and "default_item_id" in rows["PURCHASE"].fix
    assert rows["REGISTRATION"].status == DEAD  # no Moloco type either
    assert all(r.status != DEPENDS for r in rows.values())


@pytest.fixture
def example_env(monkeypatch):
    for vendor in VENDORS:
        monkeypatch.setenv(f"{vendor.upper()}_URL", "http://127.0.0.1:9")
        monkeypatch.setenv(f"{vendor.upper()}_API_KEY", "key-12345678")


@pytest.mark.parametrize("config", sorted((ROOT / "config" / "examples").glob("*.yaml")))
def test_check_prints_the_coverage_of_each_example(config, example_env, capsys):
    assert main(["check", "-c", str(config), "--strict"]) == 0
    out = capsys.readouterr().out
    source, _, sink = config.stem.partition("-to-")
    assert f"coverage {source} -> {sink}:" in out
    assert "translates" in out and "dead-lettered" not in out


def test_strict_fails_on_a_type_that_is_dead_lettered(tmp_path, example_env, capsys):
    config = (ROOT / "config" / "examples" / "conscent-to-moloco.yaml").read_text()
    path = tmp_path / "router.yaml"
    path.write_text(config.replace("default_item_id: conscent-order", ""))
    assert main(["check", "-c", str(path)]) == 0
    assert main(["check", "-c", str(path), "--strict"]) == 1
    captured = capsys.readouterr()
    assert "PURCHASE      -> PURCHASE             dead-lettered:" in captured.out
    assert "set the sink option default_item_id" in captured.out
    assert "(--strict): conscent->moloco PURCHASE" in captured.err
