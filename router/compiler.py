"""Cerberus schemas compiled, once at startup, into fast ``is_valid(doc) -> bool`` predicates.

``cerberus.Validator.validate`` spends 60-600 µs per event building child
validators, error trees and rule queues. The router only needs the verdict
on the hot path: when an event is valid (the common case) no error message
is ever shown. :func:`compile_schema` turns a schema into one Python
function whose body is straight-line code per field: no dict walk of the
schema, no rule table, no child validator at run time. When it says a
document is invalid the caller re-runs cerberus, which stays the single
source of every error message (see :class:`router.validation.Validators`).

Why generated source and not nested closures: a closure tree pays one Python
call per field and per rule, and cannot specialise one rule on what an
earlier one proved (after ``type: string``, ``maxlength`` is a bare
``len(v) > 128`` and ``regex`` needs no ``isinstance``). Measured on the
corpora of ``python -m bench.validation``, a minimal closure tree (type,
allowed, lengths, bounds, regex, nested schemas only) took 2-3x the time of
the generated code that handles every supported rule. Generated code
inlines nested dicts and list items into a single frame and can be read:
``Compiled.source`` shows exactly what runs, and tracebacks point into it
(the source is registered with :mod:`linecache`).

Why not an existing library: fastjsonschema and jsonschema-rs compile JSON
Schema, not cerberus, and the two languages disagree on the details the
router depends on (stock cerberus counts ``True`` as an ``integer``, anchors
``regex`` with an appended ``$`` and ``re.match``, treats ``empty`` as a rule
that *drops* length/regex/allowed checks, …); translating would need this
same per-rule analysis plus a new dependency. Cerberus 1.3 itself has no
compiled mode, and Cerberus 2 is unreleased.

Semantics (verified against :class:`router.schema.SchemaValidator`, which is
cerberus 1.3 with JSON types, with ``validate(doc, normalize=False)``;
``tests/unit/test_compiler.py`` holds the evidence):

* ``type``: ``integer`` is ``int`` but not ``bool``; ``float`` is ``float``
  or ``int`` but not ``bool``; ``number`` is ``int``/``float`` but not
  ``bool``; ``list`` is any non-``str`` ``Sequence`` (tuples);
  ``dict`` any ``Mapping``. A list of types passes if any one does; an
  empty type list checks nothing.
* ``nullable`` (default ``False``) is checked on every field: ``None`` fails
  unless nullable; a nullable ``None`` skips every rule except
  ``dependencies``, ``excludes`` and ``readonly``.
* ``empty`` only acts when the rule is present: an empty ``Sized`` value
  fails on ``empty: False`` and, on ``empty: True``, skips ``allowed``,
  ``minlength``, ``maxlength`` and ``regex``. Without the rule an empty
  string is still subject to ``minlength``/``regex``/``allowed``.
* ``allowed``: a string or non-iterable value must be in the list; any other
  iterable (list, dict) must have every element (every key) in it.
* ``regex``: only strings are checked, with ``re.match(pattern + "$")``
  (``$`` not appended if already there): so ``"abc\\n"`` matches ``abc``,
  and ``a|b`` accepts ``"ax"`` (the ``$`` binds to the last branch only).
* ``min``/``max``: compared with ``<``/``>``; a ``TypeError`` (a string
  against a number) passes. ``minlength``/``maxlength`` apply to iterables.
* ``schema`` on a ``dict`` field validates the mapping with the field's
  ``allow_unknown``/``require_all`` (else the parent's); on a ``list`` field
  it applies the rules to every item, and the items' nested dicts inherit
  the *parent's* ``allow_unknown``, not the list field's.
* ``dependencies`` (name, list of names or mapping name -> allowed values,
  dotted paths, ``^`` for the root) and ``excludes`` follow cerberus,
  including its bookkeeping that a required field excluded by a present
  required field is no longer required.
* ``readonly: True`` fails whenever the field is present (no normalization).
* ``meta`` and the normalization rules (``default``, ``coerce``, ``rename``,
  …) do nothing under ``normalize=False`` and are accepted.

Anything else (``anyof``, ``check_with``, ``forbidden``, ``contains``,
``items``, schema registries, ``schema`` without a ``dict`` or ``list``
type, ``dependencies``/``excludes`` directly in list item or keys/values
rules, a mapping ``allow_unknown``) makes :func:`compile_schema` return a
:class:`Compiled` with ``is_valid=None`` and the rule names in
``unsupported``, so the caller falls back to cerberus.

The domain is JSON-like documents (dict, list, tuple, str, int, float,
bool, None). Where cerberus itself would raise on a document (a dotted
dependency through a string, say), ``is_valid`` returns ``False`` so the
caller's cerberus re-run raises exactly as before.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import cerberus

from router.codegen import Compiled, Ctx, join
from router.nonnull import NonNullRules
from router.schema import SchemaValidator

__all__ = ["SUPPORTED_RULES", "Compiled", "compile_schema"]

#: Rules whose normalize=False semantics the compiler reproduces.
SUPPORTED_RULES = frozenset(
    {
        "allow_unknown",
        "allowed",
        "dependencies",
        "empty",
        "excludes",
        "keysrules",
        "max",
        "maxlength",
        "meta",
        "min",
        "minlength",
        "nullable",
        "readonly",
        "regex",
        "require_all",
        "required",
        "schema",
        "type",
        "valuesrules",
    }
)

#: Normalization rules: no effect on validate(..., normalize=False).
_NO_OPS = frozenset(cerberus.Validator.normalization_rules)

#: The type names cerberus knows, with the classes each includes and excludes.
_TYPES = SchemaValidator.types_mapping


def compile_schema(
    schema: Mapping[str, Any], *, allow_unknown: Any, require_all: bool = False
) -> Compiled:
    """Compile a cerberus schema into a predicate equivalent to
    ``cerberus.Validator(schema, allow_unknown=..., require_all=...)
    .validate(doc, normalize=False)``.

    :param schema: A cerberus schema; it is checked (and its shortcuts
        expanded) by cerberus first, so a bad schema raises
        ``cerberus.SchemaError`` here as it would in ``cerberus.Validator``.
    :param allow_unknown: As for ``cerberus.Validator``; only booleans compile.
    :returns: A :class:`Compiled`; ``is_valid`` is ``None`` if any rule is
        unsupported, with the rules in ``unsupported``.
    """
    expanded = cerberus.Validator(schema, allow_unknown=allow_unknown).schema
    gen = _Generator()
    if not isinstance(allow_unknown, bool):
        gen.unsupported("allow_unknown", "", "a rules set for unknown fields")
    if not isinstance(require_all, bool):
        gen.unsupported("require_all", "", "not a boolean")
    if gen.problems:
        return gen.failed()
    gen.emit("def is_valid(doc):")
    gen.indent += 1
    gen.emit("if not isinstance(doc, dict) and not isinstance(doc, _Mapping):")
    gen.emit("    return False")
    gen.mapping("doc", dict(expanded), Ctx(allow_unknown, require_all, "mapping"), "")
    gen.emit("return True")
    gen.indent -= 1
    if gen.problems:
        return gen.failed()
    return gen.build()


class _Generator(NonNullRules):
    """The code of one schema: mappings, dependencies, values and their types."""

    # --- a mapping validated against a schema -------------------------------

    def mapping(self, d: str, schema: Mapping[Any, Any], ctx: Ctx, where: str) -> None:
        """Code that returns False unless the Mapping in ``d`` passes ``schema``."""
        for name, rules in schema.items():
            if not isinstance(rules, Mapping):
                self.unsupported("schema", join(where, name), "rules set registry")
                return
        if not ctx.allow_unknown:
            known = self.const(frozenset(schema), "_known")
            self.emit(f"if not {known}.issuperset({d}):")
            self.emit("    return False")

        def required(rules: Mapping[str, Any]) -> Any:
            return rules.get("required", ctx.require_all)

        # Fields a present required field's ``excludes`` can make unrequired.
        unrequirable: set[Any] = set()
        for name, rules in schema.items():
            if "excludes" in rules and required(rules):
                unrequirable.add(name)
                unrequirable.update(e for e in _excluded(rules["excludes"]) if e in schema)
        # None, or the frozenset of fields the present ones made unrequired.
        unreq = self.var("_unreq") if unrequirable else None
        if unreq:
            self.emit(f"{unreq} = None")

        for name, rules in schema.items():
            here = join(where, name)
            key = self.literal(name)
            v = self.var("v")
            self.emit(f"if {key} in {d}:")
            self.indent += 1
            self.emit(f"{v} = {d}[{key}]")
            self.value(v, rules, ctx, here)
            if "dependencies" in rules:
                self.dependencies(d, rules["dependencies"], here)
            if "excludes" in rules:
                excluded = _excluded(rules["excludes"])
                if excluded:
                    test = " or ".join(f"{self.literal(e)} in {d}" for e in excluded)
                    self.emit(f"if {test}:")
                    self.emit("    return False")
                if unreq and required(rules):
                    gone = self.const(frozenset([name, *(e for e in excluded if e in schema)]))
                    self.emit(f"{unreq} = {gone} if {unreq} is None else {unreq} | {gone}")
            self.emit("pass")
            self.indent -= 1
            if required(rules) is True and name not in unrequirable:
                self.emit("else:")
                self.emit("    return False")

        if unreq:
            for name, rules in schema.items():
                if required(rules) is True and name in unrequirable:
                    key = self.literal(name)
                    self.emit(f"if {key} not in {d} and ({unreq} is None or {key} not in {unreq}):")
                    self.emit("    return False")
            # At least one unrequired field must be present with a value.
            f = self.var("_f")
            self.emit(f"if {unreq} is not None:")
            self.emit(f"    for {f} in {unreq}:")
            self.emit(f"        if {d}.get({f}) is not None:")
            self.emit("            break")
            self.emit("    else:")
            self.emit("        return False")

    def dependencies(self, d: str, constraint: Any, where: str) -> None:
        if isinstance(constraint, str) or not isinstance(constraint, Iterable | Mapping):
            constraint = (constraint,)
        if isinstance(constraint, Sequence):
            for dep in constraint:
                found = self.var("_dep")
                self.emit(f"{found} = {self.lookup(d, dep, '_MISSING')}")
                self.emit(f"if {found} is _MISSING or {found} is _CRASH:")
                self.emit("    return False")
        elif isinstance(constraint, Mapping):
            for dep, wanted in constraint.items():
                if not isinstance(wanted, Sequence) or isinstance(wanted, str):
                    wanted = [wanted]
                found = self.var("_dep")
                # cerberus reports a missing field's value as None.
                self.emit(f"{found} = {self.lookup(d, dep, 'None')}")
                self.emit(f"if {found} is _CRASH or {found} not in {self.const(wanted)}:")
                self.emit("    return False")

    def lookup(self, d: str, path: Any, missing: str) -> str:
        """An expression for the value cerberus's ``_lookup_field(path)`` finds,
        ``missing`` if there is none, ``_CRASH`` where cerberus raises."""
        if not isinstance(path, str):
            return "_CRASH"  # cerberus calls path.startswith()
        context = d
        if path.startswith("^"):
            path = path[1:]
            context = d if path.startswith("^") else "doc"
        parts = path.split(".")
        if len(parts) == 1:
            key = self.literal(parts[0])
            if missing == "None":
                return f"{context}.get({key})"
            return f"({context}[{key}] if {key} in {context} else {missing})"
        return f"_lookup({context}, {self.const(tuple(parts), '_path')}, {missing})"

    # --- one value against a rules set --------------------------------------

    def value(self, v: str, rules: Mapping[str, Any], ctx: Ctx, where: str) -> None:
        """Code that returns False unless the value in ``v`` passes ``rules``."""
        for rule in rules:
            if rule in _NO_OPS:
                continue
            if rule not in SUPPORTED_RULES:
                self.unsupported(rule, where)
            elif rule in ("dependencies", "excludes") and ctx.kind != "mapping":
                self.unsupported(rule, where, f"inside {ctx.kind} rules")
        for rule in ("allow_unknown", "require_all"):
            if rule in rules and not isinstance(rules[rule], bool):
                self.unsupported(rule, where, "not a boolean")
        if self.problems:
            return

        if rules.get("readonly"):
            self.emit("return False")
            return
        nullable = rules.get("nullable")
        if nullable:
            self.emit(f"if {v} is not None:")
            self.indent += 1
        elif not _rejects_none(rules.get("type")):
            self.emit(f"if {v} is None:")
            self.emit("    return False")
        # (else the type check below refuses None by itself)

        kinds = self.type_check(v, rules.get("type"), where)
        self.nonnull_rules(v, rules, ctx, where, kinds)
        if nullable:
            self.emit("pass")
            self.indent -= 1

    def type_check(self, v: str, constraint: Any, where: str) -> frozenset[str]:
        """Emit the type rule; return what the value can be after it."""
        if not constraint:
            return frozenset({"any"})
        types = (constraint,) if isinstance(constraint, str) else tuple(constraint)
        tests = []
        kinds: set[str] = set()
        for name in types:
            if name == "string":
                tests.append(f"isinstance({v}, str)")
                kinds.add("str")
            elif name == "integer":
                tests.append(f"(isinstance({v}, int) and not isinstance({v}, bool))")
                kinds.add("number")
            elif name == "boolean":
                tests.append(f"isinstance({v}, bool)")
                kinds.add("number")
            elif name == "float":
                tests.append(f"(isinstance({v}, (float, int)) and not isinstance({v}, bool))")
                kinds.add("number")
            elif name == "number":
                tests.append(f"(isinstance({v}, (int, float)) and not isinstance({v}, bool))")
                kinds.add("number")
            elif name == "dict":
                tests.append(f"isinstance({v}, dict) or isinstance({v}, _Mapping)")
                kinds.add("mapping")
            elif name == "list":
                tests.append(
                    f"isinstance({v}, list) or "
                    f"(isinstance({v}, _Sequence) and not isinstance({v}, str))"
                )
                kinds.add("sequence")
            elif name in _TYPES:
                definition = _TYPES[name]
                inc = self.const(tuple(definition.included_types), "_inc")
                exc = self.const(tuple(definition.excluded_types), "_exc")
                tests.append(f"(isinstance({v}, {inc}) and not isinstance({v}, {exc}))")
                kinds.add("other")
            else:
                self.unsupported("type", where, f"custom type {name!r}")
                return frozenset({"any"})
        self.emit(f"if not ({' or '.join(tests)}):")
        self.emit("    return False")
        return frozenset(kinds)


def _rejects_none(constraint: Any) -> bool:
    """Whether a type rule refuses None (every cerberus type does; no type does not)."""
    if not constraint:
        return False
    types = (constraint,) if isinstance(constraint, str) else tuple(constraint)
    return all(
        name in _TYPES and not isinstance(None, _TYPES[name].included_types) for name in types
    )


def _excluded(constraint: Any) -> list[Any]:
    return [constraint] if isinstance(constraint, Hashable) else list(constraint)
