"""The code for the rules on a value that is not None, once its type is known.

``empty`` and the rules it can lift (``allowed``, ``minlength``,
``maxlength``, ``regex``), ``min``/``max``, and the rules on what a container
holds (``schema``, ``keysrules``, ``valuesrules``). Each is specialised on the
kinds of value the type rule left (``"str"``, ``"number"``, ``"mapping"``,
``"sequence"``, ``"other"``, ``"any"``): after ``type: string`` a length is a
bare ``len(v)``. Part of the generator of :mod:`router.compiler`, which
supplies :meth:`NonNullRules.mapping` and :meth:`NonNullRules.value` for
nested schemas.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from router.codegen import CodeGen, Ctx

__all__ = ["NonNullRules"]

#: The rules an ``empty: True`` drops for an empty value.
_DROPPED_WHEN_EMPTY = ("allowed", "minlength", "maxlength", "regex")


class NonNullRules(CodeGen):
    """Emits the rules a value passes once it is known not to be None."""

    def mapping(self, d: str, schema: Mapping[Any, Any], ctx: Ctx, where: str) -> None:
        """Code that returns False unless the Mapping in ``d`` passes ``schema``."""
        raise NotImplementedError

    def value(self, v: str, rules: Mapping[str, Any], ctx: Ctx, where: str) -> None:
        """Code that returns False unless the value in ``v`` passes ``rules``."""
        raise NotImplementedError

    def nonnull_rules(
        self, v: str, rules: Mapping[str, Any], ctx: Ctx, where: str, kinds: frozenset[str]
    ) -> None:
        """Every rule of ``rules`` but the type and ``nullable``, for a value of ``kinds``."""
        # ``empty`` runs first and, for an empty value, drops the sized rules.
        opened = self._empty(v, rules, kinds)
        if "allowed" in rules:
            self._allowed(v, rules["allowed"], kinds)
        self._lengths(v, rules, kinds)
        if "regex" in rules and (kinds & {"str", "any", "other"}):
            self._regex(v, rules["regex"], kinds)
        if opened:
            self.emit("pass")
            self.indent -= 1
        self._bounds(v, rules, kinds)
        if "schema" in rules:
            self.schema_rule(v, rules, ctx, where, kinds)
        self._keys_and_values(v, rules, ctx, where, kinds)

    def _empty(self, v: str, rules: Mapping[str, Any], kinds: frozenset[str]) -> bool:
        """The ``empty`` rule; True if it opened a block the dropped rules go in."""
        if "empty" not in rules or kinds <= {"number"}:
            return False
        sized = kinds <= {"str", "mapping", "sequence"}
        is_empty = f"not {v}" if sized else f"(isinstance({v}, _Sized) and len({v}) == 0)"
        if not rules["empty"]:
            self.emit(f"if {is_empty}:")
            self.emit("    return False")
            return False
        if not any(r in rules for r in _DROPPED_WHEN_EMPTY):
            return False
        self.emit(f"if not ({is_empty}):")
        self.indent += 1
        return True

    def _allowed(self, v: str, allowed: Any, kinds: frozenset[str]) -> None:
        """A scalar must be allowed; every member (or key) of a container must be."""
        x = self.var("x")
        if kinds <= {"str", "number"}:
            self.emit(f"if {v} not in {self.const(_fast_container(allowed), '_allowed')}:")
            self.emit("    return False")
            return
        a = self.const(allowed, "_allowed")
        if kinds <= {"mapping", "sequence"}:
            self.emit(f"for {x} in {v}:")
            self.emit(f"    if {x} not in {a}:")
            self.emit("        return False")
            return
        self.emit(f"if isinstance({v}, str) or not isinstance({v}, _Iterable):")
        self.emit(f"    if {v} not in {a}:")
        self.emit("        return False")
        self.emit("else:")
        self.emit(f"    for {x} in {v}:")
        self.emit(f"        if {x} not in {a}:")
        self.emit("            return False")

    def _lengths(self, v: str, rules: Mapping[str, Any], kinds: frozenset[str]) -> None:
        if kinds <= {"number"}:
            return
        sized = kinds <= {"str", "mapping", "sequence"}
        for rule, op in (("minlength", "<"), ("maxlength", ">")):
            if rule in rules:
                bound = self.literal(rules[rule])
                if sized:
                    self.emit(f"if len({v}) {op} {bound}:")
                else:
                    self.emit(f"if isinstance({v}, _Iterable) and len({v}) {op} {bound}:")
                self.emit("    return False")

    def _regex(self, v: str, pattern: str, kinds: frozenset[str]) -> None:
        """Cerberus's ``re.match(pattern + "$")``, on strings only."""
        if not pattern.endswith("$"):
            pattern += "$"
        match = self.const(re.compile(pattern).match, "_match")
        if kinds == {"str"}:
            self.emit(f"if {match}({v}) is None:")
        else:
            self.emit(f"if isinstance({v}, str) and {match}({v}) is None:")
        self.emit("    return False")

    def _bounds(self, v: str, rules: Mapping[str, Any], kinds: frozenset[str]) -> None:
        for rule, op in (("min", "<"), ("max", ">")):
            if rule in rules:
                bound = rules[rule]
                test = f"{v} {op} {self.literal(bound)}"
                if kinds <= {"number"} and type(bound) in (int, float, bool):
                    self.emit(f"if {test}:")
                    self.emit("    return False")
                else:  # cerberus ignores a TypeError ("a" < 1)
                    self.emit("try:")
                    self.emit(f"    if {test}:")
                    self.emit("        return False")
                    self.emit("except TypeError:")
                    self.emit("    pass")

    def _keys_and_values(
        self, v: str, rules: Mapping[str, Any], ctx: Ctx, where: str, kinds: frozenset[str]
    ) -> None:
        """``keysrules`` and ``valuesrules``: every key / value of a mapping passes them."""
        for rule, kind in (("keysrules", "keys"), ("valuesrules", "values")):
            if rule in rules and kinds & {"mapping", "any", "other"}:
                x = self.var("k" if kind == "keys" else "w")
                source = v if kind == "keys" else f"{v}.values()"
                guarded = not kinds <= {"mapping"}
                if guarded:
                    self.emit(f"if isinstance({v}, _Mapping):")
                    self.indent += 1
                self.emit(f"for {x} in {source}:")
                self.indent += 1
                self.value(x, rules[rule], Ctx(ctx.allow_unknown, ctx.require_all, kind), where)
                self.emit("pass")
                self.indent -= 1
                if guarded:
                    self.indent -= 1

    def schema_rule(
        self, v: str, rules: Mapping[str, Any], ctx: Ctx, where: str, kinds: frozenset[str]
    ) -> None:
        """``schema``: a mapping's fields, or every item of a list."""
        constraint = rules["schema"]
        if constraint is None:
            return
        if "any" in kinds or "other" in kinds or {"mapping", "sequence"} <= kinds:
            self.unsupported("schema", where, "needs a type of dict or list")
            return
        if not isinstance(constraint, Mapping):
            self.unsupported("schema", where, "schema registry")
            return
        if "mapping" in kinds:
            child = Ctx(
                rules.get("allow_unknown", ctx.allow_unknown),
                rules.get("require_all", ctx.require_all),
                "mapping",
            )
            guarded = kinds != {"mapping"}
            if guarded:
                self.emit(f"if isinstance({v}, _Mapping):")
                self.indent += 1
            self.mapping(v, constraint, child, where)
            if guarded:
                self.emit("pass")
                self.indent -= 1
        elif "sequence" in kinds:
            guarded = kinds != {"sequence"}
            if guarded:
                self.emit(f"if not isinstance({v}, str) and isinstance({v}, _Sequence):")
                self.indent += 1
            item = self.var("i")
            self.emit(f"for {item} in {v}:")
            self.indent += 1
            self.value(item, constraint, Ctx(ctx.allow_unknown, ctx.require_all, "items"), where)
            self.emit("pass")
            self.indent -= 1
            if guarded:
                self.indent -= 1


def _fast_container(values: Any) -> Any:
    """``values`` as a frozenset when that keeps ``in`` exact, else unchanged."""
    try:
        return frozenset(values) if len(values) > 3 else values
    except TypeError:
        return values
