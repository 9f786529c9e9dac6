"""Cerberus schemas compiled into msgspec types: the fastest verdict on a valid event.

:func:`compile_typed` turns a schema into a :class:`msgspec.Struct` per
mapping, whose field types carry what msgspec can check itself (``str``,
``int``, ``float``, ``bool``, ``list[...]``, ``Literal[...]`` for
``allowed``, :class:`msgspec.Meta` for lengths, bounds and ``regex``).
``msgspec.convert(doc, Struct)`` checks a whole event in C; the rules
msgspec cannot express (``dependencies``, ``readonly``, a bound it would
round, …) go into a *residual* schema, compiled by :mod:`router.compiler`
and run after it. An event is valid when both say so.

The typed check may be stricter than cerberus but never laxer: whatever
it refuses goes on to the compiled predicate and, if that refuses too, to
cerberus for the error messages (see :class:`router.validation.Validators`).
So a rule is either expressed exactly (for every JSON value) or left to the
residual, where the compiled predicate checks it with cerberus's
semantics; ``tests/unit/test_typedschema.py`` compares the two over
generated documents.

How each rule maps (a ``type`` list becomes a union, one branch per type):

* ``string``: ``str`` with ``min_length``/``max_length`` (``empty: False``
  is a ``min_length`` of 1) and ``regex`` as a ``pattern``: cerberus's
  ``re.match(pattern + "$")`` is msgspec's ``re.search`` of
  ``\\A(?:pattern$)``. A regex with inline flags stays in the residual.
  The hyphenated-UUID regex becomes ``uuid.UUID``, several times cheaper than
  the pattern, with a residual ``minlength: 36``: msgspec also takes the
  32-digit form without hyphens, which the regex refuses.
* ``integer``: ``int`` with ``ge``/``le`` (a float bound rounded inwards;
  bounds outside int64 stay in the residual). ``float`` and ``number``:
  ``int | float``, each branch with its own bounds, so an integer is
  compared exactly and never through a float.
* ``allowed`` on a string or integer: a ``Literal`` of the allowed values
  that also pass the field's other rules (``1.0`` and ``True`` in the list
  allow the integer 1, as ``in`` does).
* ``dict`` with ``schema``: a nested Struct (``allow_unknown`` as
  ``forbid_unknown_fields``); ``dict`` alone: ``dict``. ``list`` with
  ``schema``: ``list[item type]``.
* ``nullable``: ``| None``. A field with no ``type`` is ``Any``, and its
  rules (and its refusal of ``null``) are residual.
* A mapping with ``excludes`` (which changes what ``required`` means) is
  residual as a whole; at the top level there is no typed check then.

The domain is what JSON parses to (dict, list, str, int, float, bool,
None), as for :mod:`router.compiler`: msgspec would take a ``set`` for a
``list``, which cerberus refuses.
"""

from __future__ import annotations

import itertools
import linecache
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

import cerberus
import msgspec

from router.codegen import Compiled, join
from router.compiler import compile_schema

__all__ = ["Typed", "compile_typed"]

#: Rules that do nothing under ``validate(doc, normalize=False)``.
_NO_OPS = frozenset({*cerberus.Validator.normalization_rules, "meta"})

#: The rules of one value that msgspec can check (with the type's help).
_VALUE_RULES = frozenset(
    {"allowed", "empty", "maxlength", "minlength", "max", "min", "regex", "schema"}
)

#: The bounds msgspec's ``ge``/``le`` take for an ``int``.
_INT64 = (-(2**63), 2**63 - 1)

#: A hyphenated UUID of either case, as a schema would spell it; ``^`` and
#: ``$``/``\Z`` are optional (re.match anchors the start, cerberus the end).
_HEX_CLASS = r"\[(?:0-9a-fA-F|0-9A-Fa-f|a-fA-F0-9|A-Fa-f0-9|a-f0-9A-F|A-F0-9a-f)\]"
_UUID_SPELLING = re.compile(
    r"\^?" + r"-".join(f"{_HEX_CLASS}\\{{{n}\\}}" for n in (8, 4, 4, 4, 12)) + r"(?:\$|\\Z)?"
)
#: Inline flags such as ``(?i)`` cannot be wrapped in ``\A(?:...)``.
_INLINE_FLAGS = re.compile(r"\(\?[aiLmsux-]")

#: Every JSON value but null.
_NOT_NULL = Union[bool, int, float, str, list, dict]  # noqa: UP007 - a runtime type


@dataclass(frozen=True, slots=True)
class Typed:
    """The result of :func:`compile_typed`.

    :param type: The msgspec type of a valid document (a Struct class), or
        ``None`` when the schema has no typed form (its top-level mapping
        uses ``excludes``, or a field name is not a string).
    :param residual: The compiled predicate of the rules msgspec does not
        check, run on a document msgspec accepted; ``None`` when there are none.
    :param residual_schema: Those rules as a cerberus schema, for reading.
    :param reasons: Where a rule went to the residual and why.
    :param accepts: The check itself: the conversion, then the residual.
    """

    type: Any | None
    residual: Compiled | None = None
    residual_schema: Mapping[str, Any] | None = None
    reasons: tuple[str, ...] = ()
    #: ``accepts(doc)``: True only if ``doc`` is valid; False may be wrong (ask
    #: the compiled predicate then). ``None`` when there is no typed form.
    accepts: Callable[[Any], bool] | None = field(default=None, repr=False)


#: What a typed check refuses with: msgspec's verdict, or a document too deep for it.
_REFUSED = (msgspec.ValidationError, RecursionError)


def _accepts(kind: Any) -> Callable[[Any], bool]:
    convert = msgspec.convert

    def accepts(doc: Any) -> bool:
        try:
            convert(doc, kind)
        except _REFUSED:
            return False
        return True

    return accepts


def _fused(kind: Any, residual: Compiled) -> Callable[[Any], bool]:
    """The conversion and the residual predicate in one function: the
    predicate's source with the conversion at its top (one call, not two)."""
    head = "def is_valid(doc):\n"
    assert residual.source is not None and residual.source.startswith(head)
    assert residual.is_valid is not None
    source = (
        "def accepts(doc):\n"
        "    try:\n"
        "        _convert(doc, _kind)\n"
        "    except _REFUSED:\n"
        "        return False\n" + residual.source[len(head) :]
    )
    filename = f"<typed cerberus schema {next(_counter)}>"
    namespace = dict(residual.is_valid.__globals__)
    namespace.update(_convert=msgspec.convert, _kind=kind, _REFUSED=_REFUSED)
    exec(compile(source, filename, "exec"), namespace)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return namespace["accepts"]


_counter = itertools.count()


def compile_typed(
    schema: Mapping[str, Any],
    *,
    allow_unknown: Any,
    require_all: bool = False,
    compiled: Compiled | None = None,
    expanded: Mapping[str, Any] | None = None,
) -> Typed:
    """The msgspec type and the residual predicate of a cerberus schema.

    Arguments as for :func:`router.compiler.compile_schema`; a schema that
    does not compile there has no typed form either (``type`` is ``None``).
    Checking a schema is most of the cost, so a caller that has already
    done it passes what it got:

    :param compiled: ``compile_schema``'s result for the same arguments.
    :param expanded: The schema as cerberus expanded it (a validator's
        ``schema``).
    """
    if not isinstance(allow_unknown, bool) or not isinstance(require_all, bool):
        return Typed(None, reasons=("<root>: allow_unknown or require_all not a boolean",))
    if compiled is None:
        compiled = compile_schema(schema, allow_unknown=allow_unknown, require_all=require_all)
    if not compiled.compiled:
        return Typed(None, reasons=("<root>: the schema does not compile",))
    if expanded is None:
        expanded = cerberus.Validator(schema, allow_unknown=allow_unknown).schema
    builder = _Builder()
    try:
        struct, residual = builder.mapping(dict(expanded), allow_unknown, require_all, "")
    except _NoType as exc:
        return Typed(None, reasons=(*builder.reasons, str(exc)))
    reasons = tuple(builder.reasons)
    if not residual:
        return Typed(struct, reasons=reasons, accepts=_accepts(struct))
    rest = compile_schema(residual, allow_unknown=True)
    if not rest.compiled:  # cannot happen: the residual is a part of a compiled schema
        return Typed(None, reasons=(*reasons, *rest.reasons))
    return Typed(struct, rest, residual, reasons, _fused(struct, rest))


class _NoType(Exception):
    """This mapping has no typed form (its parent keeps it in the residual)."""


class _Builder:
    """Builds the Structs of one schema and collects its residual rules."""

    def __init__(self) -> None:
        self.names = itertools.count()
        self.reasons: list[str] = []

    def note(self, where: str, why: str) -> None:
        self.reasons.append(f"{where or '<root>'}: {why}")

    # --- a mapping ----------------------------------------------------------

    def mapping(
        self, schema: Mapping[Any, Any], allow_unknown: bool, require_all: bool, where: str
    ) -> tuple[type[msgspec.Struct], dict[str, Any]]:
        """The Struct of a mapping, and the residual schema of its fields."""
        for name, rules in schema.items():
            if not isinstance(name, str):
                raise _NoType(f"{join(where, name)}: field name {name!r} is not a string")
            if "excludes" in rules:
                raise _NoType(f"{join(where, name)}: 'excludes' changes what required means")
        fields: list[tuple[str, Any, Any]] = []
        residual: dict[str, Any] = {}
        for i, (name, rules) in enumerate(schema.items()):
            here = join(where, name)
            kind, rest = self.field(rules, allow_unknown, require_all, here)
            if rest:
                residual[name] = rest
            if rules.get("required", require_all) is True:
                fields.append((f"f{i}", kind, msgspec.field(name=name)))
            else:
                fields.append((f"f{i}", kind, msgspec.field(default=None, name=name)))
        struct = msgspec.defstruct(
            f"Schema{next(self.names)}",
            fields,
            kw_only=True,
            gc=False,
            forbid_unknown_fields=not allow_unknown,
        )
        return struct, residual

    def field(
        self, rules: Mapping[str, Any], allow_unknown: bool, require_all: bool, where: str
    ) -> tuple[Any, dict[str, Any]]:
        """The type of one field's value, and its residual rules (``{}``: none)."""
        rules = {k: v for k, v in rules.items() if k not in _NO_OPS and k != "required"}
        # Kept whole, the rules always refuse a null unless nullable: never empty.
        rules.setdefault("nullable", False)
        nullable = rules["nullable"] is True
        if rules.get("readonly"):
            # Present at all is an error: nothing to type.
            return Any, _explicit(rules, allow_unknown, require_all)
        types = rules.get("type")
        if not types:
            if not nullable or any(k in _VALUE_RULES for k in rules):
                self.note(where, "no type: every rule is residual")
                return Any, _explicit(rules, allow_unknown, require_all)
            types = []
        elif isinstance(types, str):
            types = [types]
        rest: dict[str, Any] = {}
        if "dependencies" in rules:
            rest["dependencies"] = rules["dependencies"]
        if not types:
            return Any, rest and {**_navigation(rules), **rest}
        try:
            kind, value_rest = self.value(rules, list(types), allow_unknown, require_all, where)
        except _NoType as exc:
            self.note(where, f"residual: {exc}")
            return Any, _explicit(rules, allow_unknown, require_all)
        rest.update(value_rest)
        if nullable:
            kind = Union[kind, None]  # noqa: UP007 - a runtime type
        return kind, rest and {**_navigation(rules), **rest}

    def value(
        self,
        rules: Mapping[str, Any],
        types: list[str],
        allow_unknown: bool,
        require_all: bool,
        where: str,
    ) -> tuple[Any, dict[str, Any]]:
        """The type of a non-null value passing ``rules``; raises _NoType for a
        combination kept whole in the residual."""
        if rules.get("empty") is True and any(
            r in rules for r in ("allowed", "minlength", "maxlength", "regex")
        ):
            raise _NoType("'empty: True' lifts rules for an empty value")
        if "allowed" in rules and not set(types) <= {"string", "integer"}:
            raise _NoType("'allowed' on a type other than string or integer")
        branches: list[Any] = []
        rest: dict[str, Any] = {}
        for name in dict.fromkeys(types):
            if name == "string":
                kind, more = self.string(rules, where)
            elif name == "integer":
                kind, more = _integer(rules), {}
                if kind is None:
                    continue
            elif name in ("float", "number"):
                kind, more = Union[_integer(rules), _float(rules)], {}  # noqa: UP007
            elif name == "boolean":
                kind, more = _boolean(rules), {}
            elif name == "dict":
                kind, more = self.dict(rules, allow_unknown, require_all, where)
            elif name == "list":
                kind, more = self.list(rules, allow_unknown, require_all, where)
            else:
                raise _NoType(f"type {name!r} has no JSON form")
            if kind is not None:
                branches.append(kind)
            rest.update(more)
        if not branches:
            raise _NoType("no value passes every rule")
        try:
            return Union[tuple(branches)], rest  # noqa: UP007
        except TypeError as exc:  # msgspec refuses some unions only when used
            raise _NoType(str(exc)) from None

    # --- one type -----------------------------------------------------------

    def string(self, rules: Mapping[str, Any], where: str) -> tuple[Any, dict[str, Any]]:
        if isinstance(rules.get("min"), str) or isinstance(rules.get("max"), str):
            raise _NoType("a string bound compares strings")
        for rule in ("min", "max"):
            if rule in rules and not isinstance(rules[rule], _INCOMPARABLE_WITH_STR):
                raise _NoType(f"{rule!r} of type {type(rules[rule]).__name__}")
        low, high = _lengths(rules)
        pattern = rules.get("regex")
        if "allowed" in rules:
            matches = _matcher(pattern)
            values = [
                v
                for v in dict.fromkeys(x for x in rules["allowed"] if isinstance(x, str))
                if low <= len(v) and (high is None or len(v) <= high) and matches(v)
            ]
            if not values:
                return None, {}
            return Literal[tuple(values)], {}
        if pattern is not None and _UUID_SPELLING.fullmatch(pattern):
            # msgspec also takes the 32 digits without hyphens; the length refuses them.
            rest: dict[str, Any] = {"minlength": max(36, low)}
            if high is not None and high < 36:
                rest["maxlength"] = high
            return uuid.UUID, rest
        meta: dict[str, Any] = {}
        if low:
            meta["min_length"] = low
        if high is not None:
            meta["max_length"] = high
        if pattern is not None:
            wrapped = _wrapped(pattern)
            if wrapped is None:
                raise _NoType("a regex with inline flags")
            meta["pattern"] = wrapped
        return (Annotated[str, msgspec.Meta(**meta)] if meta else str), {}

    def dict(
        self, rules: Mapping[str, Any], allow_unknown: bool, require_all: bool, where: str
    ) -> tuple[Any, dict[str, Any]]:
        for rule in ("allowed", "keysrules", "valuesrules"):
            if rule in rules:
                raise _NoType(f"{rule!r} on a dict")
        low, high = _lengths(rules)
        schema = rules.get("schema")
        if schema is not None:
            if low or high is not None:
                raise _NoType("lengths of a dict with a schema")
            child_unknown = rules.get("allow_unknown", allow_unknown)
            child_all = rules.get("require_all", require_all)
            struct, residual = self.mapping(schema, child_unknown, child_all, where)
            return struct, ({"schema": residual} if residual else {})
        return _sized(dict, low, high), {}

    def list(
        self, rules: Mapping[str, Any], allow_unknown: bool, require_all: bool, where: str
    ) -> tuple[Any, dict[str, Any]]:
        if "allowed" in rules:
            raise _NoType("'allowed' on a list")
        for rule in ("min", "max"):
            if isinstance(rules.get(rule), list):
                raise _NoType(f"a list {rule!r} compares lists")
        low, high = _lengths(rules)
        items = rules.get("schema")
        if items is None:
            return _sized(list, low, high), {}
        item, rest = self.field(
            {**items, "required": False}, allow_unknown, require_all, f"{where}[]"
        )
        return _sized(list[item], low, high), ({"schema": rest} if rest else {})


#: Bound types a ``str < bound`` raises TypeError on (cerberus then passes).
_INCOMPARABLE_WITH_STR = (int, float, type(None), dict, list, tuple)


def _types(rules: Mapping[str, Any]) -> list[str]:
    types = rules.get("type") or []
    return [types] if isinstance(types, str) else list(types)


def _navigation(rules: Mapping[str, Any]) -> dict[str, Any]:
    """What a residual entry keeps so the compiler reaches its nested rules: the
    type and ``nullable``; a dict checks no unknown or required fields there
    (msgspec did)."""
    nav = {rule: rules[rule] for rule in ("type", "nullable") if rule in rules}
    if "dict" in _types(rules):
        nav.update(allow_unknown=True, require_all=False)
    return nav


def _explicit(rules: Mapping[str, Any], allow_unknown: bool, require_all: bool) -> dict[str, Any]:
    """``rules`` kept whole in the residual, with the ``allow_unknown`` and
    ``require_all`` each nested mapping inherits here written out: in the
    residual it sits under other parents."""
    out = dict(rules)
    for rule in ("keysrules", "valuesrules"):
        if isinstance(rules.get(rule), Mapping):
            out[rule] = _explicit(rules[rule], allow_unknown, require_all)
    schema = rules.get("schema")
    if not isinstance(schema, Mapping):
        return out
    types = _types(rules)
    if "dict" in types:
        child_unknown = rules.get("allow_unknown", allow_unknown)
        child_all = rules.get("require_all", require_all)
        out.update(allow_unknown=child_unknown, require_all=child_all)
        out["schema"] = {
            name: _explicit(r, child_unknown, child_all) if isinstance(r, Mapping) else r
            for name, r in schema.items()
        }
    elif "list" in types:
        # List items inherit the list's parent's settings, not the list field's.
        out["schema"] = _explicit(schema, allow_unknown, require_all)
    return out


def _lengths(rules: Mapping[str, Any]) -> tuple[int, int | None]:
    low = rules.get("minlength", 0)
    high = rules.get("maxlength")
    if rules.get("empty") is False:
        low = max(low, 1)
    return low, high


def _sized(kind: Any, low: int, high: int | None) -> Any:
    meta: dict[str, Any] = {}
    if low:
        meta["min_length"] = low
    if high is not None:
        meta["max_length"] = high
    return Annotated[kind, msgspec.Meta(**meta)] if meta else kind


def _wrapped(pattern: str) -> str | None:
    """cerberus's ``re.match(pattern + "$")`` as a pattern for ``re.search``."""
    if _INLINE_FLAGS.search(pattern):
        return None
    if not pattern.endswith("$"):
        pattern += "$"
    wrapped = rf"\A(?:{pattern})"
    try:
        re.compile(wrapped)
    except re.error:
        return None
    return wrapped


def _matcher(pattern: str | None) -> Callable[[str], bool]:
    if pattern is None:
        return lambda value: True
    match = re.compile(pattern if pattern.endswith("$") else pattern + "$").match
    return lambda value: match(value) is not None


def _bounds(rules: Mapping[str, Any]) -> tuple[Any, Any]:
    """``min`` and ``max`` as numbers a number is compared with; ``None`` for
    a bound cerberus ignores (``5 < "a"`` raises TypeError)."""
    found = []
    for rule in ("min", "max"):
        bound = rules.get(rule)
        if bound is None or isinstance(bound, str | list | dict | tuple):
            found.append(None)
        elif isinstance(bound, int | float):
            found.append(bound)
        else:
            raise _NoType(f"{rule!r} of type {type(bound).__name__}")
    return found[0], found[1]


def _integer(rules: Mapping[str, Any]) -> Any:
    low, high = _bounds(rules)
    meta: dict[str, Any] = {}
    if low is not None:
        if isinstance(low, float):
            if not math.isfinite(low):
                raise _NoType("an infinite or NaN bound")
            low = math.ceil(low)
        meta["ge"] = int(low)
    if high is not None:
        if isinstance(high, float):
            if not math.isfinite(high):
                raise _NoType("an infinite or NaN bound")
            high = math.floor(high)
        meta["le"] = int(high)
    for bound in meta.values():
        if not _INT64[0] <= bound <= _INT64[1]:
            raise _NoType("an integer bound beyond 64 bits")
    if "allowed" in rules:
        values = []
        for x in rules["allowed"]:
            if isinstance(x, bool | int) or (isinstance(x, float) and x.is_integer()):
                v = int(x)
                if ("ge" not in meta or v >= meta["ge"]) and ("le" not in meta or v <= meta["le"]):
                    values.append(v)
        values = list(dict.fromkeys(values))
        if not values:
            return None  # no integer passes
        if not all(_INT64[0] <= v <= _INT64[1] for v in values):
            raise _NoType("an allowed integer beyond 64 bits")
        return Literal[tuple(values)]
    return Annotated[int, msgspec.Meta(**meta)] if meta else int


def _float(rules: Mapping[str, Any]) -> Any:
    low, high = _bounds(rules)
    meta: dict[str, Any] = {}
    for key, bound in (("ge", low), ("le", high)):
        if bound is None:
            continue
        # msgspec compares a float with float(bound): exact only if that is the bound.
        if isinstance(bound, bool) or not math.isfinite(bound) or float(bound) != bound:
            raise _NoType("a float bound msgspec would round")
        meta[key] = float(bound)
    return Annotated[float, msgspec.Meta(**meta)] if meta else float


def _boolean(rules: Mapping[str, Any]) -> Any:
    if any(isinstance(rules.get(r), int | float) for r in ("min", "max")):
        raise _NoType("a numeric bound on a boolean")
    _bounds(rules)
    return bool
