"""The outbound ceiling: a bare Trio loop posting to an upstream with httpx as fast as it can.

The same client library, concurrency and single-event bodies as a
single-event sink (Moloco), without the daemon: what delivery can do at
best on this stack. Prints one JSON line: requests, seconds, requests/s.

    python -m bench.outbound URL --concurrency 16 --seconds 10 --body FILE
"""

from __future__ import annotations

import argparse
import time

import httpx
import orjson
import trio


async def run(url: str, concurrency: int, seconds: float, body: bytes) -> dict:
    done = 0
    headers = {"content-type": "application/json", "x-api-key": "bench"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        started = time.perf_counter()
        deadline = trio.current_time() + seconds

        async def worker() -> None:
            nonlocal done
            while trio.current_time() < deadline:
                response = await client.post(url, content=body, headers=headers)
                response.raise_for_status()
                done += 1

        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
        elapsed = time.perf_counter() - started
    return {"requests": done, "seconds": elapsed, "rps": done / elapsed}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--body", required=True)
    args = parser.parse_args()
    with open(args.body, "rb") as f:
        result = trio.run(run, args.url, args.concurrency, args.seconds, f.read())
    print(orjson.dumps(result).decode(), flush=True)
