"""Hypothesis strategies derived from cerberus schemas.

* :func:`valid_documents` draws documents that
  ``SchemaValidator(schema, allow_unknown=...).validate(doc, normalize=False)``
  accepts: required fields always, optional ones present or absent, values
  built to satisfy type, allowed, regex, lengths, bounds, nested schemas,
  ``dependencies`` and ``excludes``, plus unknown keys when allowed.
* :func:`invalid_documents` draws :class:`Invalid` documents that break one
  named rule at one place (``"items[0].price.amount: type"``), each checked
  against cerberus for that field while drawing.
* :func:`valid_for_spec` is :func:`valid_documents` for a
  :class:`~router.ValidatorSpec`, also satisfying its ``require_any`` groups.

Generation is constructive: values are built to pass, not drawn at random
and filtered. The filters left are local, on rule combinations the builder
does not construct (a ``check_with``, a string ``min``, a ``regex`` with
length bounds, …), which check the one value against cerberus; only a
schema with dotted or ``^`` dependencies gets a whole-document check.

Values are JSON-realistic: an ``integer`` field gets ints (never the
``bool`` cerberus would also accept), floats are finite, strings have no
surrogates. ``tests/unit/test_testing_strategies.py`` checks every strategy against
cerberus itself.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import cerberus
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from router.schema import SchemaValidator

if TYPE_CHECKING:
    from router.validation import ValidatorSpec

__all__ = ["Invalid", "invalid_documents", "json_values", "valid_documents", "valid_for_spec"]

#: Python types cerberus's type names stand for, in the order strategies try them.
_JSON_TYPES = ("string", "integer", "float", "boolean", "list", "dict")

#: Rules each type's builder satisfies by construction; any other rule on a
#: field makes the builder check that field's values against cerberus.
_BUILT = {
    "string": {"type", "empty", "minlength", "maxlength", "regex", "allowed"},
    "integer": {"type", "min", "max", "allowed", "empty", "minlength", "maxlength", "regex"},
    "float": {"type", "min", "max", "allowed", "empty", "minlength", "maxlength", "regex"},
    "number": {"type", "min", "max", "allowed", "empty", "minlength", "maxlength", "regex"},
    "boolean": {"type", "min", "max", "allowed", "empty", "minlength", "maxlength", "regex"},
    "list": {"type", "schema", "empty", "minlength", "maxlength", "allowed", "min", "max", "regex"},
    "dict": {"type", "schema", "keysrules", "valuesrules", "empty", "minlength", "maxlength"},
}
#: Rules that concern the enclosing mapping or nothing at all, never one value.
_NOT_VALUE_RULES = {
    "required",
    "dependencies",
    "excludes",
    "nullable",
    "readonly",
    "meta",
    "allow_unknown",
    "require_all",
    *cerberus.Validator.normalization_rules,
}

#: The integers orjson can encode.
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1

#: A short list cap, so nested lists of dicts stay small.
_LIST_SPAN = 3


@functools.cache
def json_values(*, max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values (what ``orjson.loads`` can return)."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(_INT64_MIN, _UINT64_MAX)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=10)
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
        ),
        max_leaves=max_leaves,
    )


def valid_documents(
    schema: Mapping[str, Any], *, allow_unknown: bool = True
) -> st.SearchStrategy[dict[str, Any]]:
    """Documents cerberus accepts for ``schema``.

    :param allow_unknown: The validator's ``allow_unknown``; when true, the
        documents may carry keys the schema does not name. Documents drawn
        with ``False`` are valid under ``True`` too.
    :raises ValueError: if no document can satisfy the schema (a required
        ``readonly`` field, contradictory bounds…).
    """
    return _Builder(schema, allow_unknown).documents(None)


def valid_for_spec(spec: ValidatorSpec) -> st.SearchStrategy[dict[str, Any]]:
    """Documents the spec's validator accepts that also satisfy its ``require_any``."""
    builder = _Builder(spec.schema, spec.allow_unknown)
    choices = [builder.viable_paths(group) for group in spec.require_any]
    for group, viable in zip(spec.require_any, choices, strict=True):
        if not viable:
            raise ValueError(f"no path of require_any group {group} can hold a value")
    if not choices:
        return builder.documents(None)
    cache: dict[tuple[str, ...], st.SearchStrategy[dict[str, Any]]] = {}

    def for_paths(paths: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
        if paths not in cache:
            cache[paths] = builder.documents(_force_tree(paths))
        return cache[paths]

    return st.tuples(*(st.sampled_from(c) for c in choices)).flatmap(for_paths)


class Invalid(NamedTuple):
    """A document cerberus rejects, and what was broken where."""

    document: dict[str, Any]
    reason: str


def invalid_documents(
    schema: Mapping[str, Any],
    *,
    allow_unknown: bool = True,
    only: Iterable[str] | None = None,
) -> st.SearchStrategy[Invalid]:
    """Documents that break one rule somewhere, each tagged with the rule and the path.

    Starts from a :func:`valid_documents` document and applies one mutation:
    drop a required field, set a wrong type, a null, a value outside
    ``allowed``, a ``regex`` miss, a too short/long value, one out of range,
    an unknown key, a broken ``dependencies``/``excludes``, a ``readonly``
    field… Value mutations are checked while drawing: the new value must
    fail exactly the named rule of its field in cerberus, and the document
    must be one cerberus rejects (rather than raises on).

    :param only: Break only these rules (``{"regex", "unknown"}``); the
        names are cerberus's rule names plus ``"unknown"`` for an unknown key.
    :raises ValueError: if the schema has nothing (of ``only``) to break.
    """
    builder = _Builder(schema, allow_unknown)
    sites = builder.sites()
    if only is not None:
        wanted = set(only)
        sites = [s for s in sites if s.kind in wanted]
    if not sites:
        raise ValueError("every document passes this schema: nothing to break")
    valid = builder.documents(None)

    @st.composite
    def draw_invalid(draw: st.DrawFn) -> Invalid:
        doc = draw(valid)
        start = draw(st.sampled_from(range(len(sites))))
        for i in range(len(sites)):
            site = sites[(start + i) % len(sites)]
            mutated = copy.deepcopy(doc)
            reason = site.apply(builder, mutated, draw)
            # Cascades can make cerberus raise (a dotted dependency through a
            # value turned into None): only keep documents it cleanly rejects.
            if reason is not None and builder.document_rejects(mutated):
                return Invalid(mutated, reason)
        # Nothing applied to this document (optional parents absent…).
        reject()

    return draw_invalid()


# --------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------


class _Impossible(Exception):
    """No value can satisfy these rules."""


@dataclass(frozen=True, slots=True)
class _Ctx:
    allow_unknown: bool
    require_all: bool


class _Builder:
    def __init__(self, schema: Mapping[str, Any], allow_unknown: bool):
        self.ctx = _Ctx(bool(allow_unknown), False)
        # cerberus checks the schema and expands its shortcuts.
        self.schema = dict(SchemaValidator(schema, allow_unknown=allow_unknown).schema)
        self.raw_schema = schema
        self.allow_unknown = allow_unknown
        self._validators: dict[tuple[int, _Ctx, bool], tuple[Any, cerberus.Validator]] = {}
        self._needs_document_check = False
        self._whole: cerberus.Validator | None = None

    # --- cerberus as the oracle for one value ------------------------------

    def field_validator(
        self, rules: Mapping[str, Any], ctx: _Ctx, *, readonly: bool = False
    ) -> cerberus.Validator:
        """A validator of ``{"f": value}`` for the value-level rules of ``rules``
        (with ``readonly`` only if asked: valid values ignore it)."""
        key = (id(rules), ctx, readonly)
        if key not in self._validators:
            skip = {"required", "dependencies", "excludes"} | (set() if readonly else {"readonly"})
            value_rules = {r: c for r, c in rules.items() if r not in skip}
            validator = SchemaValidator(
                {"f": value_rules}, allow_unknown=ctx.allow_unknown, require_all=ctx.require_all
            )
            self._validators[key] = (rules, validator)  # keeps ``rules`` alive for id()
        return self._validators[key][1]

    def value_ok(self, rules: Mapping[str, Any], ctx: _Ctx, value: Any) -> bool:
        try:
            return bool(self.field_validator(rules, ctx).validate({"f": value}, normalize=False))
        except Exception:  # cerberus raises on some values; not a usable one
            return False

    def broken_rules(self, rules: Mapping[str, Any], ctx: _Ctx, value: Any) -> set[str]:
        validator = self.field_validator(rules, ctx, readonly=True)
        try:
            validator.validate({"f": value}, normalize=False)
        except Exception:  # cerberus raises on some values; not a usable candidate
            return {"<raises>"}
        return {e.rule for e in validator._errors}

    def whole(self) -> cerberus.Validator:
        if self._whole is None:
            self._whole = SchemaValidator(self.raw_schema, allow_unknown=self.allow_unknown)
        return self._whole

    def document_ok(self, doc: Any) -> bool:
        try:
            return bool(self.whole().validate(doc, normalize=False))
        except Exception:  # cerberus raises on some documents; not a usable example
            return False

    def document_rejects(self, doc: Any) -> bool:
        try:
            return not self.whole().validate(doc, normalize=False)
        except Exception:  # cerberus raises on some documents; not a usable example
            return False

    # --- valid documents ----------------------------------------------------

    def documents(self, force: Mapping[str, Any] | None) -> st.SearchStrategy[dict[str, Any]]:
        try:
            strategy = self.mapping(self.schema, self.ctx, force)
        except _Impossible as exc:
            raise ValueError(f"no valid document: {exc}") from exc
        if self._needs_document_check:
            # Dotted or root (^) dependencies are not built, only checked.
            strategy = strategy.filter(self.document_ok)
        return strategy

    def mapping(
        self, schema: Mapping[Any, Any], ctx: _Ctx, force: Mapping[str, Any] | None
    ) -> st.SearchStrategy[dict[Any, Any]]:
        force = force or {}
        for name in force:
            if name not in schema and not ctx.allow_unknown:
                raise _Impossible(f"{name!r} is not in the schema and unknown fields are not")
        plan = _MappingPlan(schema, ctx, force)
        self.plan_dependencies(plan)
        for name, rules in schema.items():
            needed = plan.required(name) is True or name in force
            if rules.get("readonly") and needed and name not in plan.involved:
                raise _Impossible(f"{name!r} is required and readonly")
        for name, rules in schema.items():
            if rules.get("readonly"):
                continue
            try:
                plan.values[name] = self.value(
                    rules,
                    ctx,
                    nonnull=name in plan.involved,
                    nonempty=name in force and not force[name],
                    force=force.get(name) or None,
                )
            except _Impossible:
                if plan.required(name) is True or name in force:
                    raise
        plan.phantom_force = {
            name: self.unknown_forced(sub) for name, sub in force.items() if name not in schema
        }
        return plan.strategy()

    def plan_dependencies(self, plan: _MappingPlan) -> None:
        """The simple ``dependencies`` of each field: names, and names with their values.

        Dotted and root (``^``) ones are not built, only checked on the whole document.
        """
        schema, ctx = plan.schema, plan.ctx
        for name, rules in schema.items():
            if "dependencies" not in rules:
                continue
            seq, mapping = _dependencies(rules["dependencies"])
            for dep in [*seq, *mapping]:
                if not isinstance(dep, str) or "." in dep or dep.startswith("^"):
                    self._needs_document_check = True
            plan.seq_deps[name] = [d for d in seq if _simple(d)]
            plan.map_deps[name] = {}
            for dep, wanted in mapping.items():
                if not _simple(dep):
                    continue
                if dep in schema:
                    ok = [w for w in wanted if w is not None and self.value_ok(schema[dep], ctx, w)]
                else:
                    ok = [w for w in wanted if w is not None]
                plan.map_deps[name][dep] = ok
            plan.reserved.update(plan.seq_deps[name], plan.map_deps[name])

    def unknown_forced(self, force: Mapping[str, Any]) -> st.SearchStrategy[Any]:
        """A value for a field the schema does not name that holds ``force``'s paths."""
        if not force:
            return json_values(max_leaves=4).filter(_nonempty)
        return st.fixed_dictionaries({k: self.unknown_forced(sub) for k, sub in force.items()})

    def value(
        self,
        rules: Mapping[str, Any],
        ctx: _Ctx,
        *,
        nonnull: bool = False,
        nonempty: bool = False,
        force: Mapping[str, Any] | None = None,
        hashable: bool = False,
    ) -> st.SearchStrategy[Any]:
        """Values that pass ``rules`` (the value-level rules; not required/dependencies).

        ``hashable``: only values that can be dict keys (for ``keysrules``).
        """
        if rules.get("readonly"):
            raise _Impossible("readonly")
        constraint = rules.get("type")
        types = [constraint] if isinstance(constraint, str) else list(constraint or ())
        if force is not None:
            types = [t for t in types if t == "dict"] if types else ["dict"]
        elif not types:
            types = self.untyped(rules)
        if hashable:
            types = [t for t in types if t not in ("list", "dict", "set", "container")]
            if not types:
                raise _Impossible("no hashable type")
        if "allowed" in rules:
            strategy = self.allowed(rules, ctx, types)
            if hashable:
                strategy = strategy.filter(lambda v: isinstance(v, Hashable))
        else:
            options = []
            for name in types:
                try:
                    options.append(self.typed(name, rules, ctx, force))
                except _Impossible:
                    continue
            if not options:
                raise _Impossible(f"no value of type {types} fits {dict(rules)}")
            strategy = st.one_of(options)
        if nonempty:
            strategy = strategy.filter(_nonempty)
        if rules.get("nullable") and not nonnull and not nonempty and force is None:
            strategy = st.none() | strategy
        return strategy

    def untyped(self, rules: Mapping[str, Any]) -> list[str]:
        """The types to draw for a field with no ``type`` rule."""
        if "schema" in rules:
            constraint = rules["schema"]
            is_fields = isinstance(constraint, Mapping) and all(
                isinstance(r, Mapping) for r in constraint.values()
            )
            return ["dict"] if is_fields and constraint else ["list"]
        if "keysrules" in rules or "valuesrules" in rules:
            return ["dict"]
        if "regex" in rules:
            return ["string"]
        return list(_JSON_TYPES)

    def allowed(self, rules: Mapping[str, Any], ctx: _Ctx, types: list[str]) -> st.SearchStrategy:
        allowed = list(rules["allowed"])
        options: list[st.SearchStrategy[Any]] = []
        # '' and [] pass an ``empty: True`` field whatever ``allowed`` says.
        scalars = [a for a in [*allowed, "", []] if self.value_ok(rules, ctx, a)]
        if scalars:
            options.append(st.sampled_from(scalars))
        if "list" in types and allowed:
            lo, hi = _length_bounds(rules)
            if hi is None or hi >= max(lo, 1):
                elements = st.lists(
                    st.sampled_from(allowed), min_size=max(lo, 1), max_size=min(hi or 3, lo + 3)
                )
                options.append(elements.filter(lambda v: self.value_ok(rules, ctx, v)))
        if not options:
            raise _Impossible(f"no allowed value passes {dict(rules)}")
        return st.one_of(options)

    def typed(
        self,
        name: str,
        rules: Mapping[str, Any],
        ctx: _Ctx,
        force: Mapping[str, Any] | None,
    ) -> st.SearchStrategy[Any]:
        if name == "string":
            strategy = self.string(rules)
        elif name in ("integer", "float", "number", "boolean"):
            strategy = _number(name, rules)
        elif name == "list":
            strategy = self.list(rules, ctx)
        elif name == "dict":
            strategy = self.dict(rules, ctx, force)
        elif name in ("binary", "set", "date", "datetime", "container"):
            strategy = _exotic(name)
            return strategy.filter(lambda v: self.value_ok(rules, ctx, v))
        else:
            raise _Impossible(f"custom type {name!r}")
        unbuilt = set(rules) - _BUILT[name] - _NOT_VALUE_RULES
        if name == "dict" and "schema" in rules:
            unbuilt |= {"keysrules", "valuesrules", "minlength", "maxlength", "empty"} & set(rules)
        if unbuilt:
            strategy = strategy.filter(lambda v: self.value_ok(rules, ctx, v))
        return strategy

    def string(self, rules: Mapping[str, Any]) -> st.SearchStrategy[str]:
        lo, hi = _length_bounds(rules)
        if "regex" in rules:
            try:
                strategy = st.from_regex(rules["regex"], fullmatch=True)
            except InvalidArgument as exc:
                raise _Impossible(str(exc)) from exc
            if lo or hi is not None:
                strategy = strategy.filter(lambda s: lo <= len(s) and (hi is None or len(s) <= hi))
        else:
            if hi is not None and hi < lo:
                raise _Impossible("maxlength < minlength")
            strategy = st.text(min_size=lo, max_size=hi if hi is not None else lo + 20)
        if rules.get("empty") is True:
            strategy = st.just("") | strategy
        return strategy

    def list(self, rules: Mapping[str, Any], ctx: _Ctx) -> st.SearchStrategy[list[Any]]:
        lo, hi = _length_bounds(rules)
        if hi is not None and hi < lo:
            raise _Impossible("maxlength < minlength")
        if "schema" in rules and rules["schema"] is not None:
            items = self.value(rules["schema"], ctx)
        else:
            items = json_values(max_leaves=3)
        top = lo + _LIST_SPAN if hi is None else min(hi, lo + _LIST_SPAN)
        strategy = st.lists(items, min_size=lo, max_size=top)
        if rules.get("empty") is True and lo:
            strategy = st.just([]) | strategy
        return strategy

    def dict(
        self, rules: Mapping[str, Any], ctx: _Ctx, force: Mapping[str, Any] | None
    ) -> st.SearchStrategy[dict[Any, Any]]:
        if "schema" in rules and rules["schema"] is not None:
            child = _Ctx(
                rules.get("allow_unknown", ctx.allow_unknown),
                rules.get("require_all", ctx.require_all),
            )
            return self.mapping(rules["schema"], child, force)
        lo, hi = _length_bounds(rules)
        if hi is not None and hi < lo:
            raise _Impossible("maxlength < minlength")
        try:
            keys = (
                self.value(rules["keysrules"], ctx, nonnull=True, hashable=True)
                if "keysrules" in rules
                else st.text(max_size=8)
            )
        except _Impossible:
            if lo:
                raise
            return st.just({})
        values = (
            self.value(rules["valuesrules"], ctx)
            if "valuesrules" in rules
            else json_values(max_leaves=3)
        )
        top = lo + 3 if hi is None else min(hi, lo + 3)
        distinct = self.distinct_keys(rules.get("keysrules"), ctx)
        if distinct is not None:
            if distinct < lo:
                raise _Impossible(f"keysrules allow {distinct} keys, minlength is {lo}")
            top = min(top, distinct)
        strategy = st.dictionaries(keys, values, min_size=lo, max_size=top)
        if force:
            forced = st.fixed_dictionaries({k: self.unknown_forced(s) for k, s in force.items()})
            strategy = st.tuples(strategy, forced).map(lambda pair: {**pair[0], **pair[1]})
        if rules.get("empty") is True and lo:
            strategy = st.just({}) | strategy
        return strategy

    def distinct_keys(self, rules: Mapping[str, Any] | None, ctx: _Ctx) -> int | None:
        """How many distinct keys ``keysrules`` allow, when that is small and known."""
        if rules is None:
            return None
        if "allowed" in rules:
            keys = {a for a in [*rules["allowed"], ""] if isinstance(a, Hashable)}
            return len({a for a in keys if self.value_ok(rules, ctx, a)})
        constraint = rules.get("type")
        types = {constraint} if isinstance(constraint, str) else set(constraint or ())
        if types and types <= {"boolean"}:
            return 2
        return None

    # --- require_any ----------------------------------------------------------

    def viable_paths(self, group: Iterable[str]) -> list[str]:
        """The paths of a require_any group a valid document can fill."""
        out = []
        for path in group:
            try:
                self.documents(_force_tree([path]))
            except ValueError:
                continue
            out.append(path)
        return out

    # --- invalid documents ----------------------------------------------------

    def sites(self) -> list[_Site]:
        out: list[_Site] = []
        self.mapping_sites(self.schema, self.ctx, (), out)
        return out

    def mapping_sites(
        self, schema: Mapping[Any, Any], ctx: _Ctx, path: tuple[Any, ...], out: list[_Site]
    ) -> None:
        if not ctx.allow_unknown:
            out.append(_Site("unknown", path, None, {}, ctx, schema))
        has_excludes = any("excludes" in r for r in schema.values())
        for name, rules in schema.items():
            if rules.get("required", ctx.require_all) is True and not has_excludes:
                out.append(_Site("required", path, name, rules, ctx, schema))
            if "dependencies" in rules:
                out.append(_Site("dependencies", path, name, rules, ctx, schema))
            if "excludes" in rules and _excluded(rules["excludes"]):
                out.append(_Site("excludes", path, name, rules, ctx, schema))
            self.value_sites(rules, ctx, path, name, out, schema)

    def value_sites(
        self,
        rules: Mapping[str, Any],
        ctx: _Ctx,
        path: tuple[Any, ...],
        name: Any,
        out: list[_Site],
        schema: Mapping[Any, Any] | None,
    ) -> None:
        """Sites for the value at ``path`` + ``name``; ``name`` None: an item of the list."""
        kinds = ["readonly"] if rules.get("readonly") else []
        if not rules.get("nullable"):
            kinds.append("nullable")
        if rules.get("type"):
            kinds.append("type")
        if rules.get("empty") is False:
            kinds.append("empty")
        kinds += [
            r
            for r in (
                "allowed",
                "regex",
                "minlength",
                "maxlength",
                "min",
                "max",
                "keysrules",
                "valuesrules",
            )
            if r in rules
        ]
        for kind in kinds:
            out.append(_Site(kind, path, name, rules, ctx, schema))
        constraint = rules.get("type")
        types = {constraint} if isinstance(constraint, str) else set(constraint or ())
        here = (*path, name if name is not None else _ITEM)
        nested = rules.get("schema")
        if isinstance(nested, Mapping) and types == {"dict"}:
            child = _Ctx(
                rules.get("allow_unknown", ctx.allow_unknown),
                rules.get("require_all", ctx.require_all),
            )
            self.mapping_sites(nested, child, here, out)
        elif isinstance(nested, Mapping) and types == {"list"}:
            self.value_sites(nested, ctx, here, None, out, None)


class _MappingPlan:
    """How to draw one valid mapping: which fields, in which order, with which values.

    Built by :meth:`_Builder.mapping`; the order of the draws matters only
    with ``excludes`` and ``dependencies``, which the greedy :meth:`add`
    resolves field by field.
    """

    def __init__(self, schema: Mapping[Any, Any], ctx: _Ctx, force: Mapping[str, Any]):
        self.schema = schema
        self.ctx = ctx
        self.force = force
        self.excluded = {n: _excluded(r["excludes"]) for n, r in schema.items() if "excludes" in r}
        #: Fields an ``excludes`` names, on either side.
        self.involved = set(self.excluded) | {e for es in self.excluded.values() for e in es}
        #: Names an unknown field must not take.
        self.reserved = self.involved | set(schema) | set(force)
        self.seq_deps: dict[Any, list[Any]] = {}
        self.map_deps: dict[Any, dict[Any, list[Any]]] = {}
        self.values: dict[Any, st.SearchStrategy[Any]] = {}
        self.phantom_force: dict[Any, st.SearchStrategy[Any]] = {}
        self.unknown_value = json_values(max_leaves=3)

    def required(self, name: Any) -> Any:
        return self.schema[name].get("required", self.ctx.require_all)

    def conflicts(self, name: Any, present: Mapping[Any, Any]) -> bool:
        """Whether ``name`` cannot join the fields ``present`` (an ``excludes`` either way)."""
        excluded = self.excluded
        if name in excluded.get(name, ()):  # excludes itself: never present
            return True
        if any(e in present for e in excluded.get(name, ())):
            return True
        return any(name in excluded.get(p, ()) for p in present)

    def add(self, name: Any, present: dict[Any, Any], pins: dict[Any, list[Any]]) -> bool:
        """Add ``name`` and what it depends on to ``present``; False if that cannot be."""
        if name in present:
            return True
        if self.conflicts(name, present):
            return False
        if name not in self.values and (name in self.schema or not self.ctx.allow_unknown):
            return False  # readonly, impossible, or unknown where unknowns are refused
        present[name] = True
        for dep in self.seq_deps.get(name, ()):
            if not self.add(dep, present, pins):
                return False
        for dep, ok in self.map_deps.get(name, {}).items():
            pins[dep] = [w for w in pins.get(dep, ok) if w in ok]
            if not pins[dep] or not self.add(dep, present, pins):
                return False
        return True

    def order(self, draw: st.DrawFn) -> list[Any]:
        """The fields in the order they are tried: forced, required, then optional."""
        schema, force = self.schema, self.force
        # Only excludes and dependencies make the order matter; skip the draws otherwise.
        ordered = bool(self.excluded) or any(self.seq_deps.values()) or any(self.map_deps.values())

        def shuffle(names: list[Any]) -> list[Any]:
            return draw(st.permutations(names)) if ordered and len(names) > 1 else names

        required_first = [n for n in schema if n not in force and self.required(n) is True]
        optional = [n for n in schema if n not in force and self.required(n) is not True]
        # Fields with ``excludes`` go first among the required: when A (required)
        # excludes B, A present makes B unrequired, not the other way round.
        return [
            *(n for n in schema if n in force),
            *shuffle([n for n in required_first if n in self.excluded]),
            *[n for n in required_first if n not in self.excluded],
            *shuffle(optional),
        ]

    def present_fields(self, draw: st.DrawFn) -> tuple[dict[Any, Any], dict[Any, list[Any]]]:
        """The fields of one document, and the values ``dependencies`` pin some to."""
        present: dict[Any, Any] = {}
        pins: dict[Any, list[Any]] = {}
        for name in self.order(draw):
            must = name in self.force or self.required(name) is True
            if name in present or not (must or draw(st.booleans())):
                continue
            trial, trial_pins = dict(present), {k: list(v) for k, v in pins.items()}
            if self.add(name, trial, trial_pins):
                present, pins = trial, trial_pins
        return present, pins

    def unrequired(self, present: Mapping[Any, Any]) -> set[Any]:
        """cerberus's required bookkeeping with excludes: the fields ``present`` unrequire."""
        unrequired: set[Any] = set()
        for name in present:
            if name in self.excluded and self.required(name):
                unrequired.add(name)
                unrequired.update(e for e in self.excluded[name] if e in self.schema)
        return unrequired

    def strategy(self) -> st.SearchStrategy[dict[Any, Any]]:
        """Documents of this plan."""
        schema = self.schema
        extra_keys = (
            st.dictionaries(
                st.text(min_size=1, max_size=8).filter(lambda k: k not in self.reserved),
                self.unknown_value,
                max_size=2,
            )
            if self.ctx.allow_unknown
            else st.just({})
        )

        @st.composite
        def draw_mapping(draw: st.DrawFn) -> dict[Any, Any]:
            present, pins = self.present_fields(draw)
            unrequired = self.unrequired(present)
            for name in schema:
                if self.required(name) is True and name not in present and name not in unrequired:
                    reject()  # a combination of excludes the greedy order cannot satisfy
            if any(name not in present for name in schema if name in self.force):
                reject()  # a require_any path excluded by a required field
            doc: dict[Any, Any] = {}
            doc.update(draw(extra_keys))
            for name in present:
                if name in pins:
                    doc[name] = draw(st.sampled_from(pins[name]))
                elif name in schema:
                    doc[name] = draw(self.values[name])
                elif name in self.phantom_force:
                    doc[name] = draw(self.phantom_force[name])
                else:
                    doc[name] = draw(self.unknown_value)
            for name, strategy in self.phantom_force.items():
                if name not in doc:
                    doc[name] = draw(strategy)
            if unrequired and all(doc.get(f) is None for f in unrequired):
                reject()
            return doc

        return draw_mapping()


class _Item:
    def __repr__(self) -> str:
        return "[*]"


_ITEM: Any = _Item()

#: Values of every JSON kind, for wrong types and other breakage.
_PROBES: tuple[Any, ...] = (
    0,
    1,
    -1,
    2**40,
    0.5,
    -2.5,
    1e300,
    True,
    False,
    "",
    " ",
    "x",
    "0",
    "!",
    "\x00",
    "é",
    "x" * 300,
    [],
    [0],
    ["x"],
    {},
    {"k": 0},
)


@dataclass(frozen=True, eq=False)
class _Site:
    """One place and one rule :func:`invalid_documents` can break."""

    kind: str
    path: tuple[Any, ...]  # keys and _ITEM from the root to the container
    name: Any  # the field in the container; None for a list item
    rules: Mapping[str, Any]
    ctx: _Ctx
    schema: Mapping[Any, Any] | None  # the container's schema, for mapping containers

    def apply(self, builder: _Builder, doc: dict[Any, Any], draw: st.DrawFn) -> str | None:
        """Break ``doc`` in place; the reason, or None if this site does not apply."""
        container: Any = doc
        where: list[Any] = []
        for step in self.path:
            if step is _ITEM:
                if not isinstance(container, list) or not container:
                    return None
                index = draw(st.integers(0, len(container) - 1))
                container = container[index]
                where.append(index)
            else:
                if not isinstance(container, dict) or step not in container:
                    return None
                container = container[step]
                where.append(step)
        if self.kind == "unknown":
            if not isinstance(container, dict):
                return None
            key = "unknown"
            while key in self.schema:
                key += "_"
            container[key] = draw(json_values(max_leaves=2))
            return f"{_path(where)}: unknown field {key!r}"
        if self.name is None:
            if not isinstance(container, list) or not container:
                return None
            index = draw(st.integers(0, len(container) - 1))
            where.append(index)
            return self.break_value(builder, container, index, where, draw)
        if not isinstance(container, dict):
            return None
        where.append(self.name)
        if self.kind == "required":
            if self.name not in container:
                return None
            del container[self.name]
            return f"{_path(where)}: required field dropped"
        if self.kind == "dependencies":
            return self.break_dependencies(builder, container, where, draw)
        if self.kind == "excludes":
            return self.break_excludes(builder, container, where, draw)
        return self.break_value(builder, container, self.name, where, draw)

    def present(self, builder: _Builder, container: dict[Any, Any], draw: st.DrawFn) -> bool:
        """Make sure the field is there (with a valid value); False if impossible."""
        if self.name in container:
            return True
        try:
            container[self.name] = draw(builder.value(self.rules, self.ctx, nonnull=True))
        except _Impossible:
            return False
        return True

    def break_dependencies(
        self, builder: _Builder, container: dict[Any, Any], where: list[Any], draw: st.DrawFn
    ) -> str | None:
        seq, mapping = _dependencies(self.rules["dependencies"])
        seq = [d for d in seq if _simple(d)]
        mapping = {d: w for d, w in mapping.items() if _simple(d)}
        if (not seq and not mapping) or not self.present(builder, container, draw):
            return None
        if seq:
            dep = draw(st.sampled_from(seq))
            container.pop(dep, None)
            return f"{_path(where)}: dependencies ({dep!r} missing)"
        dep = draw(st.sampled_from(sorted(mapping, key=repr)))
        wanted = mapping[dep]
        rules = (self.schema or {}).get(dep)
        candidates: list[Any] = []
        if rules is not None:
            candidates += list(rules.get("allowed", ()))
            with contextlib.suppress(_Impossible):
                candidates += [draw(builder.value(rules, self.ctx, nonnull=True)) for _ in range(3)]
        candidates += list(_PROBES)
        for candidate in candidates:
            fits = rules is None or builder.value_ok(rules, self.ctx, candidate)
            if candidate not in wanted and fits:
                container[dep] = candidate
                return f"{_path(where)}: dependencies ({dep!r} = {candidate!r})"
        if None not in wanted:
            container.pop(dep, None)
            return f"{_path(where)}: dependencies ({dep!r} missing)"
        return None

    def break_excludes(
        self, builder: _Builder, container: dict[Any, Any], where: list[Any], draw: st.DrawFn
    ) -> str | None:
        if not self.present(builder, container, draw):
            return None
        other = draw(st.sampled_from(_excluded(self.rules["excludes"])))
        rules = (self.schema or {}).get(other)
        value: Any = 1
        if rules is not None:
            try:
                value = draw(builder.value(rules, self.ctx, nonnull=True))
            except _Impossible:
                value = 1
        container[other] = value
        return f"{_path(where)}: excludes ({other!r} present too)"

    def break_value(
        self, builder: _Builder, container: Any, key: Any, where: list[Any], draw: st.DrawFn
    ) -> str | None:
        current = container[key] if (isinstance(container, list) or key in container) else None
        if self.kind == "readonly":
            candidates = [current]
            if current is None:
                stripped = {r: c for r, c in self.rules.items() if r != "readonly"}
                with contextlib.suppress(_Impossible):
                    candidates.append(draw(builder.value(stripped, self.ctx, nonnull=True)))
        else:
            candidates = self.candidates(builder, current, draw)
        for candidate in candidates:
            if builder.broken_rules(self.rules, self.ctx, candidate) == {self.kind}:
                container[key] = candidate
                return f"{_path(where)}: {self.kind} ({_short(candidate)})"
        return None

    def candidates(self, builder: _Builder, current: Any, draw: st.DrawFn) -> list[Any]:
        """Values likely to break ``self.kind`` and nothing else, most targeted first."""
        rules, kind = self.rules, self.kind
        out: list[Any] = []
        if kind == "nullable":
            return [None]
        if kind == "empty":
            return ["", [], {}]
        if kind == "allowed":
            for a in rules["allowed"]:
                if isinstance(a, str):
                    out += [a + "x", "x" + a, a[:-1], a.swapcase()]
                elif isinstance(a, int | float) and not isinstance(a, bool):
                    out += [a + 1, a - 1, a + 0.5]
            out.append(draw(st.text(min_size=1, max_size=12)))
            out.append(draw(st.integers()))
        elif kind == "regex":
            if isinstance(current, str):
                out += [current + "!", "!" + current, current[:-1], current * 2, current + "\x00"]
            out.append(draw(st.text(max_size=6)))
        elif kind in ("minlength", "maxlength"):
            bound = rules[kind]
            if kind == "minlength" and bound > 0:
                if isinstance(current, str | list):
                    out.append(current[: bound - 1])
                out += ["x" * (bound - 1), [0] * (bound - 1)]
            elif kind == "maxlength":
                if isinstance(current, str) and current:
                    out += [current * (bound // len(current) + 1), current + current[-1] * bound]
                if isinstance(current, list) and current:
                    out.append((current * (bound + 1))[: bound + 1])
                if isinstance(current, list) and "schema" in rules:
                    try:
                        item = builder.value(rules["schema"], self.ctx)
                        out.append(draw(st.lists(item, min_size=bound + 1, max_size=bound + 1)))
                    except _Impossible:
                        pass
                out += ["x" * (bound + 1), [0] * (bound + 1)]
        elif kind in ("min", "max"):
            bound = rules[kind]
            if isinstance(bound, int | float):
                step = -1 if kind == "min" else 1
                out += [bound + step, bound + step / 2, bound + step * 1e6]
                if isinstance(bound, float):
                    out.append(math.floor(bound + step) if step > 0 else math.ceil(bound - 1))
        elif kind == "keysrules":
            base = dict(current) if isinstance(current, dict) else {}
            fill = next(iter(base.values()), 0)
            out += [{**base, probe: fill} for probe in _PROBES if isinstance(probe, Hashable)]
        elif kind == "valuesrules":
            base = dict(current) if isinstance(current, dict) else {}
            key = next(iter(base), "k")
            out += [{**base, key: probe} for probe in (None, *_PROBES)]
        return out + list(_PROBES)


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def _number(name: str, rules: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    lo = rules.get("min")
    hi = rules.get("max")
    # A bound that is not a number is ignored by cerberus (TypeError).
    lo = lo if isinstance(lo, int | float) else None
    hi = hi if isinstance(hi, int | float) else None
    if lo is not None and hi is not None and lo > hi:
        raise _Impossible("min > max")
    if name == "boolean":
        ok = [b for b in (False, True) if (lo is None or b >= lo) and (hi is None or b <= hi)]
        if not ok:
            raise _Impossible("no boolean within bounds")
        return st.sampled_from(ok)
    # Unbounded sides stay within what a JSON encoder (orjson) takes.
    ilo = _INT64_MIN if lo is None else math.ceil(lo)
    ihi = _INT64_MAX if hi is None else math.floor(hi)
    ints = st.integers(ilo, ihi) if ilo <= ihi else st.nothing()
    if name == "integer":
        if ints.is_empty:
            raise _Impossible("no integer within bounds")
        return ints
    floats = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return ints | floats


def _exotic(name: str) -> st.SearchStrategy[Any]:
    return {
        "binary": st.binary(max_size=8),
        "set": st.sets(st.integers(), max_size=3),
        "date": st.dates(),
        "datetime": st.datetimes(),
        "container": st.lists(st.integers(), max_size=3),
    }[name]


def _length_bounds(rules: Mapping[str, Any]) -> tuple[int, int | None]:
    lo = rules.get("minlength", 0) or 0
    hi = rules.get("maxlength")
    if rules.get("empty") is False:
        lo = max(lo, 1)
    return lo, hi


def _excluded(constraint: Any) -> list[Any]:
    return [constraint] if isinstance(constraint, Hashable) else list(constraint)


def _dependencies(constraint: Any) -> tuple[list[Any], dict[Any, list[Any]]]:
    """cerberus's two forms: names that must be present, and name -> allowed values."""
    if isinstance(constraint, str) or not isinstance(constraint, Iterable | Mapping):
        constraint = (constraint,)
    if isinstance(constraint, Sequence):
        return list(constraint), {}
    if isinstance(constraint, Mapping):
        out = {}
        for dep, wanted in constraint.items():
            if not isinstance(wanted, Sequence) or isinstance(wanted, str):
                wanted = [wanted]
            out[dep] = list(wanted)
        return [], out
    return [], {}


def _simple(dep: Any) -> bool:
    return isinstance(dep, str) and "." not in dep and not dep.startswith("^")


def _nonempty(value: Any) -> bool:
    return value not in (None, "", [], {})


def _force_tree(paths: Iterable[str]) -> dict[str, Any]:
    force: dict[str, Any] = {}
    for path in paths:
        node = force
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node.setdefault(parts[-1], {})
    return force


def _path(parts: Sequence[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
