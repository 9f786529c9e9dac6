"""A client's JSON body: parsed by orjson, its nesting bounded by ``server.max_json_depth``.

Why bound it: orjson parses up to 1,024 levels but serializes only 255, and
the codecs and validators recurse, so a valid but deep body would be
accepted by the parser and fail later with a 500. The bound is checked
right after parsing, on the hot path, so it is done in two steps:

1. A C-speed look at the raw bytes (``count``, ``translate``, ``replace``)
   that proves most bodies shallow enough without touching the parsed
   document: strings are cut out, and the remaining brackets are peeled one
   or two levels per round of ``replace``.
2. Only when that cannot decide (brackets inside strings, or a depth near
   the bound), an exact walk of the parsed document.
"""

from __future__ import annotations

from typing import Any

import orjson

from router.errors import BadRequest, NestingTooDeep

__all__ = ["depth_exceeds", "loads"]

#: Every byte but the quote and the four brackets, deleted by ``bytes.translate``.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
#: Bodies up to this size are first checked by counting opening brackets.
SMALL_BODY = 4096


def loads(body: bytes, max_depth: int) -> Any:
    """The parsed body; BadRequest if it is empty or not JSON, NestingTooDeep if too deep."""
    if not body:
        raise BadRequest("request body is empty; send a JSON document")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit exceeded" in str(exc):  # orjson's own bound, 1,024 levels
            raise _too_deep(max_depth) from None
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if depth_exceeds(body, document, max_depth):
        raise _too_deep(max_depth)
    return document


def _too_deep(max_depth: int) -> NestingTooDeep:
    return NestingTooDeep(
        f"request body nests arrays and objects more than {max_depth} levels deep "
        "(server.max_json_depth)"
    )


def depth_exceeds(body: bytes, document: Any, max_depth: int) -> bool:
    """Whether ``document``, parsed from the valid JSON ``body``, nests deeper than ``max_depth``.

    The top-level array or object is level 1; a scalar document has depth 0.
    """
    quick = _quick_check(body, max_depth)
    if quick is not None:
        return quick
    return _walk_exceeds(document, max_depth)


def _quick_check(body: bytes, max_depth: int) -> bool | None:
    """True or False when the bytes decide it, None when the document must be walked."""
    # Depth never exceeds the number of opening brackets, even counting those in
    # strings; counting pays off only on small bodies (single events).
    if len(body) <= SMALL_BODY and body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    if b"\\" in body:
        # Pairs from the left, as a JSON tokenizer does; then every quote left delimits a string.
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = body.translate(None, _NOT_STRUCTURE)
    # Every string shows as an adjacent pair of quotes unless it holds a bracket
    # (``count`` pairs from the left, like the strings do).
    if marks.count(b'""') * 2 != marks.count(b'"'):
        return None
    marks = marks.translate(None, b'"')
    # ``marks`` is now exactly the document's brackets. Each round removes every
    # innermost pair, so it peels at least one level and at most two.
    rounds = 0
    while marks:
        rounds += 1
        if rounds > max_depth:
            return True
        peeled = marks.replace(b"{}", b"").replace(b"[]", b"")
        if peeled == marks:
            return None  # not balanced: cannot happen for valid JSON, but never guess
        marks = peeled
    if 2 * rounds <= max_depth:
        return False
    return None


def _walk_exceeds(document: Any, max_depth: int) -> bool:
    if not isinstance(document, dict | list):
        return False
    stack = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False
