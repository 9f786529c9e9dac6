"""Outbound HTTP: the ceiling loop, and the CPU per request of httpx against the sinks' client.

The ceiling: a bare Trio loop posting to an upstream as fast as it can, with
the client library, concurrency and single-event bodies of a single-event
sink (Moloco), without the daemon: what delivery can do at best on this
stack. Prints one JSON line: requests, seconds, requests/s.

    python -m bench.outbound URL --concurrency 16 --seconds 10 --body FILE [--client lean]

The comparison: starts the fake upstream in its own process, then posts the
same body (17 KB unless ``--body``) to it with each client in turn, each
``--repeat`` times, alternating; the lowest CPU per request of each counts.
CPU is this process's (``getrusage``, user and system), so the upstream's
work is not in it. Prints one JSON line per client and one with the ratios.

    python -m bench.outbound --compare [--requests 3000] [--concurrency 1] [--repeat 3]

Clients: ``lean`` is ``router.outbound.ConnectionPool`` (what sinks post
through), ``httpx`` an ``httpx.AsyncClient`` with the limits sinks used to
get, ``httpcore`` httpcore's pool under it.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import httpcore
import httpx
import orjson
import trio

from bench.procs import Child, python, ready_line
from router.outbound import ConnectionPool

HEADERS = {"content-type": "application/json", "x-api-key": "bench"}
CLIENTS = ("httpx", "httpcore", "lean")
Post = Callable[[], Awaitable[None]]


def default_body(size: int = 17 * 1024) -> bytes:
    """A JSON object of about ``size`` bytes."""
    return orjson.dumps({"event": "bench", "pad": "x" * (size - 24)})


async def open_client(stack: AsyncExitStack, kind: str, url: str, body: bytes, n: int) -> Post:
    """A coroutine function posting ``body`` to ``url`` once with client ``kind``."""
    if kind == "httpx":
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        client = await stack.enter_async_context(httpx.AsyncClient(limits=limits, timeout=10))

        async def post() -> None:
            response = await client.post(url, content=body, headers=HEADERS)
            if response.status_code >= 300:
                raise RuntimeError(f"upstream answered {response.status_code}")

    elif kind == "httpcore":
        pool = await stack.enter_async_context(httpcore.AsyncConnectionPool(max_connections=n))
        pairs = [(k.encode(), v.encode()) for k, v in HEADERS.items()]

        async def post() -> None:
            response = await pool.request("POST", url, content=body, headers=pairs)
            if response.status >= 300:
                raise RuntimeError(f"upstream answered {response.status}")

    else:
        lean = ConnectionPool(max_connections=n, timeout=10)
        stack.push_async_callback(lean.aclose)

        async def post() -> None:
            response = await lean.post(url, content=body, headers=HEADERS)
            if response.status_code >= 300:
                raise RuntimeError(f"upstream answered {response.status_code}")

    return post


async def run(url: str, concurrency: int, seconds: float, body: bytes, kind: str = "lean") -> dict:
    """The ceiling: ``concurrency`` tasks posting for ``seconds``."""
    done = 0
    async with AsyncExitStack() as stack:
        post = await open_client(stack, kind, url, body, concurrency)
        started = time.perf_counter()
        deadline = trio.current_time() + seconds

        async def worker() -> None:
            nonlocal done
            while trio.current_time() < deadline:
                await post()
                done += 1

        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
        elapsed = time.perf_counter() - started
    return {"requests": done, "seconds": elapsed, "rps": done / elapsed}


async def cpu_per_request(
    kind: str, url: str, body: bytes, requests: int, concurrency: int
) -> dict:
    """One measured run: warm connections up, then ``requests`` posts; CPU and wall µs each."""
    per_task = max(1, requests // concurrency)
    async with AsyncExitStack() as stack:
        post = await open_client(stack, kind, url, body, concurrency)

        async def worker(count: int) -> None:
            for _ in range(count):
                await post()

        async def all_workers(count: int) -> None:
            async with trio.open_nursery() as nursery:
                for _ in range(concurrency):
                    nursery.start_soon(worker, count)

        await all_workers(20)  # connections opened, code paths warm
        before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        await all_workers(per_task)
        after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall
    done = per_task * concurrency
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    return {
        "client": kind,
        "requests": done,
        "cpu_us_per_request": round((user + system) / done * 1e6, 1),
        # The kernel's share: loopback TCP is processed in the sender's system time.
        "user_us_per_request": round(user / done * 1e6, 1),
        "system_us_per_request": round(system / done * 1e6, 1),
        "wall_us_per_request": round(wall / done * 1e6, 1),
    }


def compare(body: bytes, requests: int, concurrency: int, repeat: int) -> list[dict]:
    """Every client against one fake upstream process; the best run of each, and the ratios."""
    upstream = Child(python("-m", "router.testing.upstream", "--port", "0"), ready_line)
    url = upstream.url + "/rmp/event/v1/platforms/web/userevents"
    try:
        best: dict[str, dict] = {}
        for _ in range(repeat):
            for kind in CLIENTS:
                result = trio.run(cpu_per_request, kind, url, body, requests, concurrency)
                if (
                    kind not in best
                    or result["cpu_us_per_request"] < (best[kind]["cpu_us_per_request"])
                ):
                    best[kind] = result
    finally:
        upstream.stop()
    lean = best["lean"]["cpu_us_per_request"]
    lines = [
        {**result, "body_bytes": len(body), "concurrency": concurrency} for result in best.values()
    ]
    lines.append(
        {
            "cpu_ratio_httpx_to_lean": round(best["httpx"]["cpu_us_per_request"] / lean, 2),
            "cpu_ratio_httpcore_to_lean": round(best["httpcore"]["cpu_us_per_request"] / lean, 2),
        }
    )
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url", nargs="?")
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--body")
    parser.add_argument("--client", choices=CLIENTS, default="lean")
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.body:
        with open(args.body, "rb") as f:
            payload = f.read()
    else:
        payload = default_body()
    if args.compare:
        for line in compare(payload, args.requests, args.concurrency or 1, args.repeat):
            print(orjson.dumps(line).decode(), flush=True)
    else:
        if not args.url:
            parser.error("a URL is needed without --compare")
        result = trio.run(run, args.url, args.concurrency or 16, args.seconds, payload, args.client)
        print(orjson.dumps(result).decode(), flush=True)
