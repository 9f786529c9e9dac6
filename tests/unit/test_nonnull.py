"""router.nonnull: the rules on a value that is not None, specialised on its known kinds."""

from __future__ import annotations

from typing import Any

import pytest

from router.codegen import Ctx
from router.nonnull import NonNullRules

ANY = frozenset({"any"})
STR = frozenset({"str"})


def predicate(rules: dict[str, Any], kinds: frozenset[str]):
    gen = NonNullRules()
    gen.emit("def is_valid(v):")
    gen.indent += 1
    gen.nonnull_rules("v", rules, Ctx(True, False, "mapping"), "f", kinds)
    gen.emit("return True")
    return gen.build().is_valid


@pytest.mark.parametrize("kinds", [STR, ANY])
def test_empty_true_lifts_the_sized_rules_and_empty_false_refuses(kinds):
    lifted = predicate({"empty": True, "minlength": 3, "regex": "a+"}, kinds)
    assert lifted("") and lifted("aaa") and not lifted("a") and not lifted("bbb")
    refused = predicate({"empty": False}, kinds)
    assert not refused("") and refused("x")


def test_allowed_checks_a_scalar_or_every_member():
    scalar = predicate({"allowed": ["a", "b", "c", "d"]}, STR)
    assert scalar("a") and not scalar("e")
    members = predicate({"allowed": ["a", "b"]}, ANY)
    assert members(["a", "b"]) and members({"a": 1}) and members("a")
    assert not members(["a", "x"]) and not members("x")


def test_lengths_apply_to_iterables_only_when_the_type_is_unknown():
    check = predicate({"minlength": 2, "maxlength": 3}, ANY)
    assert check([1, 2]) and check(5) and not check([1]) and not check("abcd")


def test_min_and_max_ignore_values_that_do_not_compare():
    check = predicate({"min": 1, "max": 5}, ANY)
    assert check(3) and check("a") and not check(0) and not check(6)


def test_regex_matches_at_the_start_with_cerberus_dollar():
    check = predicate({"regex": "ab"}, ANY)
    assert check("ab") and check("ab\n") and check(7) and not check("xab") and not check("abc")


def test_keysrules_and_valuesrules_check_every_key_and_value():
    gen_rules = {"keysrules": {"regex": "[a-z]+"}, "valuesrules": {"type": "integer"}}

    class Values(NonNullRules):
        def value(self, v, rules, ctx, where):
            if "regex" in rules:
                self.nonnull_rules(v, rules, ctx, where, STR)
            else:
                self.emit(f"if not isinstance({v}, int):")
                self.emit("    return False")

    gen = Values()
    gen.emit("def is_valid(v):")
    gen.indent += 1
    gen.nonnull_rules("v", gen_rules, Ctx(True, False, "mapping"), "f", frozenset({"mapping"}))
    gen.emit("return True")
    check = gen.build().is_valid
    assert check({"ab": 1}) and not check({"AB": 1}) and not check({"ab": "1"})


def test_schema_without_a_container_type_is_unsupported():
    gen = NonNullRules()
    gen.nonnull_rules("v", {"schema": {"a": {}}}, Ctx(True, False, "mapping"), "f", ANY)
    assert gen.failed().reasons == ("f: rule 'schema' (needs a type of dict or list)",)
