"""router.codegen: generated lines become a function with its constants, or a clear failure."""

from __future__ import annotations

import linecache
import traceback

import pytest

from router.codegen import _CRASH, _MISSING, CodeGen, _lookup, join


def test_build_binds_constants_and_registers_the_source():
    gen = CodeGen()
    limit = gen.const(frozenset({"a", "b"}), "_ok")
    gen.emit("def is_valid(doc):")
    gen.indent += 1
    gen.emit(f"return doc in {limit} and {gen.literal(3)} == 3")
    compiled = gen.build()
    assert compiled.compiled and compiled.is_valid("a") and not compiled.is_valid("c")
    filename = compiled.is_valid.__code__.co_filename
    assert linecache.getlines(filename) == compiled.source.splitlines(True)


def test_a_traceback_points_into_the_generated_source():
    gen = CodeGen()
    gen.emit("def is_valid(doc):")
    gen.emit("    return 1 // doc")
    is_valid = gen.build().is_valid
    with pytest.raises(ZeroDivisionError) as info:
        is_valid(0)
    assert "return 1 // doc" in "".join(traceback.format_exception(info.value))


def test_unsupported_rules_make_a_failed_result_with_their_places():
    gen = CodeGen()
    gen.unsupported("anyof", "items.price")
    gen.unsupported("schema", "", "schema registry")
    failed = gen.failed()
    assert failed.is_valid is None and not failed.compiled
    assert failed.unsupported == {"anyof", "schema"}
    assert failed.reasons == (
        "items.price: rule 'anyof'",
        "<root>: rule 'schema' (schema registry)",
    )


def test_code_too_deep_to_compile_is_a_failure_not_an_error():
    gen = CodeGen()
    gen.emit("def is_valid(doc):")
    for depth in range(1, 120):
        gen.emit("    " * depth + "if doc:")
    gen.emit("    " * 120 + "return True")
    failed = gen.build()
    assert failed.is_valid is None and failed.unsupported == {"schema"}


def test_lookup_follows_cerberus():
    doc = {"a": {"b": 1}, "s": "text"}
    assert _lookup(doc, ("a", "b"), _MISSING) == 1
    assert _lookup(doc, ("a", "c"), _MISSING) is _MISSING
    assert _lookup(doc, ("s", "x", "y"), _MISSING) is _CRASH
    assert join("", "f") == "f" and join("a.b", 0) == "a.b.0"
