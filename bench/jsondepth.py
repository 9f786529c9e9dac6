"""``python -m bench.jsondepth``: what the ``server.max_json_depth`` check costs per body.

Times ``orjson.loads`` alone against ``router.jsonbody.loads`` (parse plus
depth check) on 100-event Conscent and Segmento bodies, and the exact walk
that the byte-level check usually makes unnecessary. Best of several runs,
in microseconds per body.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable, Sequence

import orjson

from bench.payloads import conscent_batch, segmento_batch
from router.jsonbody import _walk_exceeds, loads


def best_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    for name, body in (
        ("conscent x100", conscent_batch(100)),
        ("segmento x100", segmento_batch(100)),
    ):
        document = orjson.loads(body)
        parse = best_us(lambda b=body: orjson.loads(b), args.number, args.repeat)
        checked = best_us(lambda b=body: loads(b, 64), args.number, args.repeat)
        walk = best_us(lambda d=document: _walk_exceeds(d, 64), args.number, args.repeat)
        print(
            f"{name}: {len(body)} bytes; orjson.loads {parse:.1f} us, "
            f"with depth check {checked:.1f} us (+{checked - parse:.1f} us); "
            f"exact walk alone {walk:.1f} us"
        )


if __name__ == "__main__":
    main()
