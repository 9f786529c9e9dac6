"""Translator and check_options: what ``router translate`` and ``router validate`` run."""

from __future__ import annotations

import io

import orjson
import pytest

from router.errors import UnknownVendor
from router.pluginmanager import make_plugin_manager
from router.registry import build_registry
from router.translate import LineProblem, Translator, UnknownOption, check_options
from tests.helpers.third_plugin import THIRD

REGISTRY = build_registry(make_plugin_manager(autoload=False))
ANON = "0b7e8a52-3c1d-4f7e-9a6b-2d4c8e1f5a90"
EXIT = {"clientId": "c1", "eventType": "EXIT", "eventLocation": "PAGE", "anonId": ANON}


def run(translator: Translator, *lines: str, check_only: bool = False) -> tuple[list, list, tuple]:
    out, err = io.StringIO(), io.StringIO()
    counts = translator.run(lines, None if check_only else out, err)
    return (
        [orjson.loads(x) for x in out.getvalue().splitlines()],
        err.getvalue().splitlines(),
        counts,
    )


def test_translate_gives_its_source_no_storage():
    translator = Translator(REGISTRY, "conscent", "moloco")
    assert translator._source is not None and translator._source.quarantine is None


def test_an_unknown_vendor_names_the_known_ones():
    with pytest.raises(UnknownVendor, match=r"no vendor 'nope' \(known: canonical, conscent, endu"):
        Translator(REGISTRY, "nope")
    with pytest.raises(UnknownVendor, match="no vendor 'nope'"):
        Translator(REGISTRY, "conscent", "nope")


def test_envelopes_and_single_events_are_both_read_and_problems_name_line_and_index():
    envelope = orjson.dumps({"messageBody": [EXIT, {**EXIT, "eventLocation": "MOON"}]}).decode()
    lines = [orjson.dumps(EXIT).decode(), "", envelope, "{not json"]
    out, err, counts = run(Translator(REGISTRY, "conscent", "canonical"), *lines)
    assert counts == (2, 2)
    assert [e["type"] for e in out] == ["exit", "exit"]
    assert err[0].startswith("line 3[1]: eventLocation: ")
    assert err[1].startswith("line 4: invalid JSON: ")


def test_a_malformed_envelope_is_the_sources_own_message():
    _, err, counts = run(Translator(REGISTRY, "conscent"), '{"messageBody": 3}', check_only=True)
    assert counts == (0, 1)
    assert err == ["line 1: messageBody must be an array of events"]


def test_check_only_writes_no_event():
    out, err, counts = run(
        Translator(REGISTRY, "conscent"), orjson.dumps(EXIT).decode(), check_only=True
    )
    assert (out, err, counts) == ([], [], (1, 0))


def test_a_canonical_source_is_checked_as_a_canonical_event():
    translator = Translator(REGISTRY, "canonical", "canonical")
    _, err, counts = run(translator, '{"id": "e", "type": "exit"}')
    assert counts == (0, 1) and err[0].startswith("line 1: not a canonical event: ")


def test_an_untranslatable_event_says_why_and_for_which_destination():
    # Moloco has no type for an exit unless type_map gives one.
    item = next(
        iter(Translator(REGISTRY, "conscent", "moloco").read([orjson.dumps(EXIT).decode()]))
    )
    result = Translator(REGISTRY, "conscent", "moloco").translate(item)
    assert isinstance(result, LineProblem)
    assert str(result).startswith("line 1: cannot translate to moloco: Moloco has no event type")
    assert str(result).endswith("(field event_type)")


def test_options_the_destination_does_not_take_are_refused_with_a_hint():
    check_options(REGISTRY, "moloco", {})
    check_options(REGISTRY, "moloco", {"platform": "ACME"})
    with pytest.raises(
        UnknownOption, match=r"moloco has no option 'chanel_type' \(did you mean 'channel_type'\?"
    ):
        check_options(REGISTRY, "moloco", {"chanel_type": "APP"})


def test_required_options_are_not_required_to_translate():
    # The moloco sink requires url, api_key and platform; translating needs none of them.
    check_options(REGISTRY, "moloco", {"type_map": {"page_view": "HOME"}})


def test_translate_takes_type_map_for_a_third_party_destination():
    """``router translate -o type_map=…`` to a sink that does not declare type_map."""
    registry = build_registry(make_plugin_manager(autoload=False, extra=THIRD))
    check_options(registry, "third", {"type_map": {"click": "TAP"}})
    with pytest.raises(UnknownOption, match="type_map"):
        check_options(registry, "third", {"type_map": {"click": ""}})
    # The vendor's own narrowing still applies.
    with pytest.raises(UnknownOption, match="unallowed value NO"):
        check_options(registry, "conscent", {"type_map": {"click": "NO"}})
