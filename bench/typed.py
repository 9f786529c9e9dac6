"""msgspec types against compiled predicates, on the vendors' sample payloads.

Run from the repo root::

    python -m bench.typed [--repeat 7] [--events 200] [--seed 0]

For each built-in plugin: its events from ``bench/payloads.py`` (the
workloads of ``python -m bench``) and a corpus per spec drawn from
``valid_for_spec`` with a fixed seed. Columns, in µs/event (best of
``--repeat`` passes, in the CPU time of the process):

* ``compiled``: the compiled predicate alone (the check before msgspec);
* ``typed``: what ``Validators`` now runs first, ``msgspec.convert`` to the
  spec's Struct plus its residual predicate;
* ``ratio``: compiled / typed;
* ``typed%``: the share of events the typed check accepted by itself (the
  rest pay for both checks);
* ``loads+c`` and ``json``: from the event's bytes, ``orjson.loads`` plus the
  predicate against ``msgspec.json`` decoding to the Struct, for specs with
  no residual rules (``-`` otherwise): what a decoder that never builds the
  dict would pay.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import orjson

from bench import payloads
from bench.validation import corpus, load_catalog
from router.compiler import compile_schema
from router.typedschema import compile_typed
from router.validation import ValidatorSpec


def best_us(fn: Callable[[Any], Any], items: Sequence[Any], repeat: int) -> float:
    """The best pass in CPU time of this process: on a shared machine another
    process's turn on the core does not count against the code measured."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time_ns()
        for _ in range(_LAPS):
            for item in items:
                fn(item)
        best = min(best, time.process_time_ns() - start)
    return best / _LAPS / len(items) / 1e3


#: Rounds over the items in one pass: a pass of a one-event sample is too short to time.
_LAPS = 20


def sample_events() -> dict[str, list[dict[str, Any]]]:
    """The bench workloads' events, by vendor."""
    return {
        "conscent": [payloads.conscent_event(i) for i in range(100)],
        "segmento": [payloads.segmento_event(i) for i in range(100)],
        "endu": [orjson.loads(payloads.endu_event())],
        "moloco": [orjson.loads(payloads.moloco_event())],
    }


def event_type(vendor: str, doc: dict[str, Any]) -> str:
    field = {"conscent": "eventType", "segmento": "event_name"}.get(vendor, "event_type")
    return doc.get(field, "*")


class Row:
    def __init__(self, name: str, docs: list[dict[str, Any]], spec: ValidatorSpec, repeat: int):
        compiled = compile_schema(spec.schema, allow_unknown=spec.allow_unknown)
        typed = compile_typed(spec.schema, allow_unknown=spec.allow_unknown)
        assert compiled.is_valid is not None and typed.accepts is not None, name
        is_valid, accepts = compiled.is_valid, typed.accepts
        assert all(is_valid(d) for d in docs), name

        def new(doc: Any) -> bool:
            return accepts(doc) or is_valid(doc)

        self.name, self.events = name, len(docs)
        self.compiled = best_us(is_valid, docs, repeat)
        self.typed = best_us(new, docs, repeat)
        self.accepted = sum(accepts(d) for d in docs) / len(docs)
        self.loads = self.json = None
        if typed.residual is None:
            raw = [orjson.dumps(d) for d in docs]
            decode = msgspec.json.Decoder(typed.type).decode
            loads = orjson.loads
            self.loads = best_us(lambda b: is_valid(loads(b)), raw, repeat)
            self.json = best_us(decode, raw, repeat)

    def line(self) -> str:
        def us(value: float | None) -> str:
            return f"{value:>8.2f}" if value is not None else f"{'-':>8}"

        return (
            f"{self.name:<36} {self.events:>6} {self.compiled:>9.2f} {self.typed:>8.2f} "
            f"{self.compiled / self.typed:>6.2f}x {self.accepted:>6.0%} "
            f"{us(self.loads)} {us(self.json)}"
        )


def rows(*, events: int, repeat: int, seed: int) -> list[Row]:
    catalog = load_catalog()
    specs = {(s.vendor, s.event_type): s for s in catalog.plugin_specs()}
    out = []
    for vendor, docs in sample_events().items():
        by_type: dict[str, list[dict[str, Any]]] = {}
        for doc in docs:
            kind = event_type(vendor, doc)
            by_type.setdefault(kind if (vendor, kind) in specs else "*", []).append(doc)
        for kind, group in sorted(by_type.items()):
            out.append(Row(f"sample {vendor}.{kind}", group, specs[vendor, kind], repeat))
    for (vendor, kind), spec in specs.items():
        docs = corpus(spec, events=events, seed_value=seed)
        out.append(Row(f"corpus {vendor}.{kind}", docs, spec, repeat))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200, help="generated events per spec")
    parser.add_argument("--repeat", type=int, default=7, help="passes; the best counts")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed of the corpus")
    args = parser.parse_args(argv)
    header = (
        f"{'payload':<36} {'events':>6} {'compiled':>9} {'typed':>8} {'ratio':>7} "
        f"{'typed%':>6} {'loads+c':>8} {'json':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows(events=args.events, repeat=args.repeat, seed=args.seed):
        print(row.line(), flush=True)
    print(f"\nµs/event, best of {args.repeat} passes")


if __name__ == "__main__":
    main()
