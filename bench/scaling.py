"""Throughput of one and two daemons sharing Redis, against the embedded SQLite spool.

Usage (from the repository root; needs ``wrk`` and a Redis on 127.0.0.1:6379)::

    python -m bench.scaling [--seconds 10] [--connections 16] [--redis redis://127.0.0.1:6379/0]

Everything runs on loopback, as processes of this machine: a fake Conscent
upstream (``python -m router.testing.upstream``), the daemons (``router
run``, Conscent -> Conscent, 10 events per request, batches of up to 100),
and ``wrk`` as the load generator (one per daemon, the connections split
between them). For each setup it prints the events accepted per second
(2xx answers x 10) while wrk runs, the request latency wrk measured, and
the events delivered per second from the start of the load until the
upstream had received every accepted event.

Each setup uses its own Redis key prefix, deleted afterwards.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import trio

from router.testing.process import DaemonProcess
from router.testing.redis import delete_prefix

EVENTS_PER_REQUEST = 10


def request_body() -> bytes:
    events = [
        {
            "clientId": "bench",
            "eventType": "PING",
            "eventLocation": "PAGE",
            "anonId": str(uuid.uuid4()),
            "pingId": str(uuid.uuid4()),
            "active": 1,
        }
        for _ in range(EVENTS_PER_REQUEST)
    ]
    return orjson.dumps({"messageBody": events})


def wrk_script(path: Path) -> Path:
    body = request_body().decode().replace("\\", "\\\\").replace('"', '\\"')
    script = path / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = "{body}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def config(path: Path, upstream: str, *, redis: str | None, prefix: str) -> Path:
    buffer = "redis" if redis else "disk"
    section = f'redis: {{url: "{redis}", prefix: {prefix}}}\n' if redis else ""
    path.write_text(
        textwrap.dedent(f"""\
        logging: {{level: info, format: json}}
        server: {{shutdown_timeout: 5}}
        sources:
          conscent: {{plugin: conscent, auth: none}}
        sinks:
          conscent:
            plugin: conscent
            url: {upstream}
            api_key: k
            buffer: {buffer}
            spool: {{max_events: 10000000}}
        routes: [{{from: conscent, to: conscent}}]
        """)
        + section
    )
    return path


@dataclass
class Result:
    setup: str
    accepted_per_s: float
    refused: int
    latency_p50_ms: float
    latency_p99_ms: float
    delivered_per_s: float
    accepted: int


async def metric(url: str, name: str) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        text = (await client.get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def parse_wrk(out: str) -> tuple[int, int, float, float]:
    """(requests, non-2xx, p50 ms, p99 ms) from ``wrk --latency`` output."""

    def ms(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = ms(re.search(r"50%\s+(\S+)", out).group(1))
    p99 = ms(re.search(r"99%\s+(\S+)", out).group(1))
    return requests, int(bad.group(1)) if bad else 0, p50, p99


async def run_setup(
    name: str, daemons: int, redis: str | None, args: argparse.Namespace, work: Path
) -> Result:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    upstream = await trio.lowlevel.open_process(
        [sys.executable, "-m", "router.testing.upstream", "--port", "0", "--count-events"],
        stdout=subprocess.PIPE,
    )
    line = b""
    while not line.endswith(b"\n"):
        line += await upstream.stdout.receive_some(1)
    upstream_url = line.decode().split()[1]
    cfg = config(work / f"{name}.yaml", upstream_url, redis=redis, prefix=prefix)
    script = wrk_script(work)
    try:
        async with trio.open_nursery() as nursery:
            procs = [
                DaemonProcess(
                    ["run", "-c", str(cfg), "--bind", "127.0.0.1:0", "--data-dir", str(d)]
                )
                for d in (work / f"{name}-{i}" for i in range(daemons))
            ]
            for proc in procs:
                await proc.start(nursery)
            per_daemon = max(1, args.connections // daemons)
            outputs: list[str] = []
            started = time.monotonic()

            async def load(url: str) -> None:
                done = await trio.run_process(
                    [
                        args.wrk, "-t1", f"-c{per_daemon}", f"-d{args.seconds}s", "--latency",
                        "-s", str(script), f"{url}/collect/event",
                    ],
                    capture_stdout=True,
                )  # fmt: skip
                outputs.append(done.stdout.decode())

            async with trio.open_nursery() as loads:
                for proc in procs:
                    loads.start_soon(load, proc.url)
            parsed = [parse_wrk(out) for out in outputs]
            requests = sum(p[0] for p in parsed)
            refused = sum(p[1] for p in parsed)
            accepted = (requests - refused) * EVENTS_PER_REQUEST
            with trio.fail_after(args.drain_timeout):
                while True:
                    delivered = 0.0
                    for proc in procs:
                        delivered += await metric(proc.url, "router_sink_events_delivered_total")
                    if delivered >= accepted:
                        break
                    await trio.sleep(0.05)
            delivered_per_s = delivered / (time.monotonic() - started)
            for proc in procs:
                proc.signal()
            for proc in procs:
                await proc.wait()
    finally:
        upstream.terminate()
        await upstream.wait()
        if redis:
            await delete_prefix(prefix, redis)
    return Result(
        name,
        (requests - refused) * EVENTS_PER_REQUEST / args.seconds,
        refused,
        max(p[2] for p in parsed),
        max(p[3] for p in parsed),
        delivered_per_s,
        accepted,
    )


async def main_async(args: argparse.Namespace) -> list[Result]:
    setups = [
        ("embedded (SQLite spool), 1 daemon", 1, None),
        ("redis spool, 1 daemon", 1, args.redis),
        ("redis spool, 2 daemons", 2, args.redis),
    ]
    results = []
    with tempfile.TemporaryDirectory(prefix="router-bench-") as tmp:
        for i, (name, daemons, redis) in enumerate(setups):
            work = Path(tmp) / f"s{i}"
            work.mkdir()
            result = await run_setup(
                name.split(",")[0].split()[0] + str(daemons), daemons, redis, args, work
            )
            result.setup = name
            results.append(result)
            print(
                f"{name:36} accepted {result.accepted_per_s:8.0f} ev/s  "
                f"p50 {result.latency_p50_ms:6.1f} ms  p99 {result.latency_p99_ms:6.1f} ms  "
                f"delivered {result.delivered_per_s:8.0f} ev/s  (refused {result.refused})",
                flush=True,
            )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scaling", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=int, default=10, help="load per setup (default 10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections in all")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--drain-timeout", type=float, default=120)
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    args = parser.parse_args(argv)
    trio.run(main_async, args)


if __name__ == "__main__":
    main()
