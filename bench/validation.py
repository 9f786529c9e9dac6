"""Cerberus vs compiled validation, per schema, on a fixed corpus of valid events.

Run from the repo root::

    python -m bench.validation [--events 300] [--repeat 5] [--seed 0]

The schemas are those of ``tests/data/schemas`` plus the built-in plugins
listed there in ``PLUGINS``. Each corpus is drawn once from
``valid_for_spec`` with a fixed hypothesis seed, so runs compare like with
like; every number is the best of ``--repeat`` passes over the corpus.
Columns: cerberus ``validate(doc, normalize=False)``, the compiled predicate,
their ratio, and ``Validators.check`` (predicate + require_any), in µs/event.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings

from router.compiler import compile_schema
from router.schema import SchemaValidator
from router.testing.strategies import valid_for_spec
from router.validation import Validators, ValidatorSpec

ROOT = Path(__file__).resolve().parents[1]


def load_catalog() -> Any:
    path = ROOT / "tests" / "data" / "schemas" / "__init__.py"
    spec = importlib.util.spec_from_file_location("_router_test_schemas", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def corpus(spec: ValidatorSpec, *, events: int, seed_value: int) -> list[dict[str, Any]]:
    """``events`` valid documents for ``spec``, the same on every run (same hypothesis)."""
    docs: list[dict[str, Any]] = []

    @seed(seed_value)
    @settings(
        max_examples=events,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(valid_for_spec(spec))
    def collect(doc: dict[str, Any]) -> None:
        docs.append(doc)

    collect()
    return docs


def best_us(fn: Callable[[Any], Any], docs: Sequence[Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for doc in docs:
            fn(doc)
        best = min(best, time.perf_counter() - start)
    return best / len(docs) * 1e6


def measure(
    *, events: int = 200, repeat: int = 3, seed_value: int = 0, vendors_only: bool = True
) -> list[tuple[str, float, float]]:
    """``(schema, cerberus µs/event, compiled µs/event)`` per schema; ``python -m bench`` uses it.

    With ``vendors_only`` only the built-in vendors' schemas are measured (the
    issue's target is per vendor schema); schemas the compiler does not
    support are left out (there is nothing to compare).
    """
    catalog = load_catalog()
    specs = list(catalog.plugin_specs()) if vendors_only else catalog.all_specs()
    rows = []
    for spec in specs:
        compiled = compile_schema(spec.schema, allow_unknown=spec.allow_unknown)
        if compiled.is_valid is None:
            continue
        docs = corpus(spec, events=events, seed_value=seed_value)
        validator = SchemaValidator(spec.schema, allow_unknown=spec.allow_unknown)
        slow = functools.partial(validator.validate, normalize=False)
        rows.append(
            (
                catalog.spec_id(spec),
                best_us(slow, docs, repeat),
                best_us(compiled.is_valid, docs, repeat),
            )
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300, help="corpus size per schema")
    parser.add_argument("--repeat", type=int, default=5, help="passes; the best counts")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed of the corpus")
    args = parser.parse_args(argv)

    catalog = load_catalog()
    header = (
        f"{'schema':<32} {'events':>6} {'cerberus':>10} {'compiled':>10} {'ratio':>7} {'check':>8}"
    )
    print(header)
    print("-" * len(header))
    for spec in catalog.all_specs():
        name = catalog.spec_id(spec)
        docs = corpus(spec, events=args.events, seed_value=args.seed)
        validator = SchemaValidator(spec.schema, allow_unknown=spec.allow_unknown)
        compiled = compile_schema(spec.schema, allow_unknown=spec.allow_unknown)
        validators = Validators([spec])
        assert all(validator.validate(d, normalize=False) for d in docs), name

        slow = functools.partial(validator.validate, normalize=False)
        check = functools.partial(validators.check, spec.vendor, spec.event_type)

        cerberus_us = best_us(slow, docs, args.repeat)
        check_us = best_us(check, docs, args.repeat)
        if compiled.is_valid is None:
            rules = ",".join(sorted(compiled.unsupported))
            print(
                f"{name:<32} {len(docs):>6} {cerberus_us:>10.1f} {'fallback':>10} "
                f"{'-':>7} {check_us:>8.1f}  ({rules})"
            )
            continue
        assert all(compiled.is_valid(d) for d in docs), name
        compiled_us = best_us(compiled.is_valid, docs, args.repeat)
        print(
            f"{name:<32} {len(docs):>6} {cerberus_us:>10.1f} {compiled_us:>10.2f} "
            f"{cerberus_us / compiled_us:>6.0f}x {check_us:>8.2f}"
        )
    print("\nµs/event, best of", args.repeat, "passes; check = Validators.check (compiled path)")


if __name__ == "__main__":
    main()
