"""``router test``: comparing what a case expects with what came of it, as readable diffs."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import orjson

from router.configcase import Case, Outcome

__all__ = ["compare", "matches", "project"]


def compare(case: Case, outcome: Outcome) -> list[str]:
    """Every way the outcome differs from what the case expects, each a readable block."""
    expect = case.expect
    failures = list(outcome.problems)
    response = expect.get("response", {})
    if "status" in response and response["status"] != outcome.status:
        failures.append(
            f"response status: expected {response['status']}, got {outcome.status}"
            f"\n{_show(outcome.body)}"
        )
    if "body" in response and not _equal(response["body"], outcome.body):
        failures.append("response body:\n" + _diff(response["body"], outcome.body))
    if "match" in response and not matches(response["match"], outcome.body):
        failures.append(
            "response body (match):\n"
            + _diff(response["match"], project(response["match"], outcome.body))
        )
    got_headers = {k.lower(): v for k, v in outcome.headers.items()}
    for name, value in response.get("headers", {}).items():
        if got_headers.get(name.lower()) != value:
            failures.append(
                f"response header {name}: expected {value!r}, got {got_headers.get(name.lower())!r}"
            )
    sinks = expect.get("sinks", {})
    for name in sorted({*sinks, *outcome.payloads}):
        failures += _compare_sink(name, sinks.get(name, "nothing"), outcome.payloads.get(name, []))
    dead = expect.get("dead_letters", {})
    for name in sorted({*dead, *outcome.dead_letters}):
        failures += _compare_list(
            f"dead letters of {name}",
            dead.get(name, []),
            outcome.dead_letters.get(name, []),
            _dead_letter_matches,
        )
    failures += _compare_list(
        "quarantined events",
        expect.get("quarantined", []),
        outcome.quarantined,
        _quarantined_matches,
    )
    return failures


def _compare_sink(name: str, expected: Any, got: list[Any]) -> list[str]:
    if expected == "nothing" or expected.get("payloads") == []:
        if got:
            shown = _show(sorted(got, key=_key))
            return [f"sink {name}: expected nothing, got {len(got)}:\n{shown}"]
        return []
    if "payloads" in expected:
        want = sorted(expected["payloads"], key=_key)
        have = sorted(got, key=_key)
        if len(want) != len(have) or not all(map(_equal, want, have)):
            return [f"sink {name} payloads:\n" + _diff(want, have)]
        return []
    return _compare_list(f"sink {name} payloads (match)", expected["match"], got, matches)


def _compare_list(what: str, want: list[Any], got: list[Any], match: Any) -> list[str]:
    """Each expected item must match a different actual one, and no actual one be left over."""
    left = list(got)
    paired: list[Any] = []
    missing = False
    for expected in want:
        found = next((i for i, actual in enumerate(left) if match(expected, actual)), None)
        if found is None:
            missing = True
            paired.append(project(expected, left.pop(0)) if left else None)
        else:
            paired.append(project(expected, left.pop(found)))
    if not missing and not left:
        return []
    return [f"{what}:\n" + _diff(want, paired + left)]


def _dead_letter_matches(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    if "reason" in expected and expected["reason"] not in actual["reason"]:
        return False
    if "status" in expected and expected["status"] != actual["status"]:
        return False
    return "payload" not in expected or matches(expected["payload"], actual["payload"])


def _quarantined_matches(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    for part in expected.get("errors", []):
        if not any(part in error for error in actual["errors"]):
            return False
    return "event" not in expected or matches(expected["event"], actual["event"])


def matches(expected: Any, actual: Any) -> bool:
    """Whether ``actual`` has everything ``expected`` has: a dict's keys may be more, a
    list must be as long, with each item matching; a ``reason`` or an ``errors`` entry
    of a dead letter or quarantined event is matched as a substring elsewhere."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and matches(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(map(matches, expected, actual))
        )
    return _equal(expected, actual)


def project(expected: Any, actual: Any) -> Any:
    """``actual`` cut down to the keys ``expected`` names, so a diff shows only those."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: project(expected[k], actual[k]) for k in expected if k in actual}
    if isinstance(expected, list) and isinstance(actual, list):
        return [project(e, a) for e, a in zip(expected, actual, strict=False)] + actual[
            len(expected) :
        ]
    return actual


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1`` equals ``1.0`` as JSON numbers do, but ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_equal, a, b))
    return a == b


def _key(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _show(value: Any) -> str:
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return "\n".join(f"    {line}" for line in text.splitlines())


def _diff(expected: Any, actual: Any) -> str:
    def lines(value: Any) -> list[str]:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()

    diff = difflib.unified_diff(
        lines(expected).splitlines(),
        lines(actual).splitlines(),
        "expected",
        "actual",
        lineterm="",
        n=3,
    )
    return "\n".join(f"    {line}" for line in diff)
