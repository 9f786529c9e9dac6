"""``python -m bench``: the daemon measured against ceilings, one thing at a time, in one run.

Steps (each in its own processes, nothing else running):

1. compiled validators against cerberus, per vendor schema;
2. the ingest **ceiling**: a bare hypercorn-trio app that parses the JSON body
   and answers 201, with each workload's request body;
3. the **outbound ceiling**: a bare Trio loop posting single events to the
   fake upstream with the sinks' client (router.outbound), at the Moloco
   sink's concurrency; the same loop with httpx beside it;
4. the **daemon** (``router run``) on four workloads, the fake upstream in its
   own process; then workload 1 with ``--workers 2``;
5. peak RSS of a daemon starting with a million events in its disk spool.

Load comes from ``wrk`` when installed (``--setup`` installs it with apt),
else from ``bench/loadgen.py``. Every ratio divides two figures measured in
this run on this machine; nothing is compared with a constant. Results are
printed as a table and written to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import trio

from bench import payloads
from bench.procs import (
    Child,
    daemon_ready,
    metric,
    python,
    ready_line,
    rss_peak_mib,
    upstream_stats,
    wait_until,
)

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "bench" / "results"

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb")
wrk.body = f:read("*a")
f:close()
"""


@dataclass
class Load:
    """One load run: what the load generator saw."""

    requests: int
    non_2xx: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    seconds: float
    tool: str


@dataclass
class Row:
    """One line of the result table."""

    name: str
    rps: float
    accepted_eps: float | None = None
    delivered_eps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    rss_mib: float | None = None
    ceiling: str = ""
    ratio: float | None = None
    target: str = ""
    notes: list[str] = field(default_factory=list)


# -- load ----------------------------------------------------------------------


def _ms(text: str) -> float | None:
    """A wrk duration (``812.00us``, ``1.20ms``, ``2.01s``, ``1.00m``) in milliseconds."""
    match = re.match(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        return None
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}[unit]


def load(url: str, path: str, body: Path, seconds: float, connections: int) -> Load:
    if shutil.which("wrk"):
        script = body.with_suffix(".lua")
        script.write_text(WRK_SCRIPT.format(body=body))
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--latency",
                "-s",
                str(script),
                url + path,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        errors = re.search(r"Socket errors: (.*)", out)
        p50 = re.search(r"50%\s+(\S+)", out).group(1)
        p99 = re.search(r"99%\s+(\S+)", out).group(1)
        result = Load(
            requests,
            int(non_2xx.group(1)) if non_2xx else 0,
            float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            _ms(p50),
            _ms(p99),
            seconds,
            "wrk",
        )
        if errors:
            print(f"    wrk socket errors: {errors.group(1)}", flush=True)
        return result
    out = subprocess.run(
        python(
            "-m",
            "bench.loadgen",
            url,
            "--path",
            path,
            "--body",
            str(body),
            "-c",
            str(connections),
            "-d",
            str(seconds),
        ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    r = json.loads(out)
    return Load(
        r["requests"],
        r["non_2xx"],
        r["rps"],
        r["p50_ms"],
        r["p99_ms"],
        r["seconds"],
        "trio-loadgen",
    )


# -- the pieces --------------------------------------------------------------------


def ceiling(body: Path, seconds: float, connections: int) -> Load:
    app = Child(python("-m", "bench.ceiling", "--port", "0"), ready_line)
    try:
        return load(app.url, "/", body, seconds, connections)
    finally:
        app.stop()


def upstream() -> Child:
    return Child(
        python("-m", "router.testing.upstream", "--port", "0", "--count-events"), ready_line
    )


def outbound_ceiling(body: Path, seconds: float, concurrency: int, client: str = "lean") -> float:
    up = upstream()
    try:
        out = subprocess.run(
            python(
                "-m",
                "bench.outbound",
                up.url + "/rmp/event/v1/platforms/web/userevents",
                "--concurrency",
                str(concurrency),
                "--seconds",
                str(seconds),
                "--body",
                str(body),
                "--client",
                client,
            ),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(out)["rps"]
    finally:
        up.stop()


SINKS = {
    # A Conscent -> Conscent relay as config/examples/conscent-to-conscent.yaml has it.
    "conscent_relay": """\
      conscent_relay_out:
        plugin: conscent
        url: {url}
        api_key: bench
    """,
    # Conscent for events from other vendors: needs a clientId and a type mapping.
    "conscent": """\
      conscent_out:
        plugin: conscent
        url: {url}
        api_key: bench
        client_id: bench
        type_map: {{page_view: PING, "*": CLICK}}
    """,
    "moloco": """\
      moloco_out:
        plugin: moloco
        url: {url}
        api_key: bench
        platform: web
        channel_type: SITE
        default_item_id: bench-item
        type_map: {{heartbeat: PAGE_VIEW, "*": UNKNOWN_EVENT_TYPE}}
    """,
    "file": """\
      file_out:
        plugin: file
        path: {data}/events.ndjson
    """,
}


def daemon_config(work: Path, source: str, sink: str, url: str) -> Path:
    path = work / "router.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        logging: {{level: info, format: json}}
        server: {{shutdown_timeout: 5}}
        sources:
          {source}: {{plugin: {source}, auth: none}}
        sinks:
        """)
        + textwrap.indent(textwrap.dedent(SINKS[sink]).format(url=url, data=work), "  ")
        + f"routes: [{{from: {source}, to: {sink}_out}}]\n"
    )
    return path


@dataclass
class Workload:
    name: str
    source: str
    path: str
    body: Path
    events_per_request: int
    sink: str
    ceiling: str
    target: str
    seconds: float
    connections: int = 32


def run_workload(w: Workload, work: Path, *, workers: int = 1) -> Row:
    up = upstream() if w.sink != "file" else None
    data = Path(tempfile.mkdtemp(prefix=f"w{w.name[0]}-{workers}-", dir=work))
    config = daemon_config(data, w.source, w.sink, up.url if up else "")
    args = router_run_args(config, data)
    if workers > 1:
        args += ["--workers", str(workers)]
    daemon = Child(args, daemon_ready)
    sink = f"{w.sink}_out"
    try:
        if workers > 1:
            wait_until(
                lambda: sum('"daemon.ready"' in line for line in daemon.lines) >= workers, 60
            )
        started = time.monotonic()
        result = load(daemon.url, w.path, w.body, w.seconds, w.connections)

        # The daemon's own count: the load tool misses requests in flight when it stops.
        def count(name: str, **labels: str) -> float:
            return metric(daemon.url, name, workers, **labels)

        # Requests the load tool gave up on may still be finishing: wait for a steady count.
        accepted = -1.0
        while (now := count("router_sink_events_accepted_total", sink=sink)) != accepted:
            accepted = now
            time.sleep(0.3)
        drained = wait_until(
            lambda: count("router_sink_events_delivered_total", sink=sink) >= accepted,
            timeout=180,
            every=0.05,
        )
        finished = time.monotonic()
        delivered = count("router_sink_events_delivered_total", sink=sink)
        pids = daemon.children_pids() if workers > 1 else [daemon.proc.pid]
        rss = max(rss_peak_mib(pid) for pid in pids)
        row = Row(
            f"{w.name}" + (f" --workers {workers}" if workers > 1 else ""),
            rps=result.rps,
            accepted_eps=accepted / result.seconds,
            delivered_eps=delivered / (finished - started),
            p50_ms=result.p50_ms,
            p99_ms=result.p99_ms,
            rss_mib=rss,
            ceiling=w.ceiling,
            target=w.target,
        )
        if up is not None:
            received = upstream_stats(up.url)["events_accepted"]
            if received != delivered:
                row.notes.append(
                    f"the upstream received {received:.0f} "
                    f"(the daemon counted {delivered:.0f} delivered)"
                )
        row.notes.append(
            (
                "delivered = accepted"
                if drained and delivered == accepted
                else f"NOT DRAINED: {delivered:.0f} of {accepted:.0f} delivered"
            )
            + f" ({accepted:.0f} events, {result.non_2xx} non-2xx, {result.tool})"
        )
        return row
    finally:
        daemon.stop()
        if up is not None:
            up.stop()


def router_run_args(config: Path, data: Path) -> list[str]:
    """``router run`` on ``config`` with its spool under ``data``, on a free port."""
    return python(
        "-m",
        "router",
        "run",
        "-c",
        str(config),
        "--bind",
        "127.0.0.1:0",
        "--data-dir",
        str(data / "data"),
    )


async def _prefill(path: Path, sink: str, events: int) -> None:
    from router.spool import Spool

    spool = Spool(path)
    await spool.open([(sink, {"durable": True, "max_events": 10 * events})])
    queue = spool.queues[sink]
    payload = json.dumps(payloads.conscent_event(2)).encode()
    async with trio.open_nursery() as nursery:
        await nursery.start(spool.run)
        chunk = 20_000
        for start in range(0, events, chunk):
            await queue.put([(f"pre-{i}", payload) for i in range(start, start + chunk)], 0.0)
        await spool.close()
        nursery.cancel_scope.cancel()
    spool.close_db()


def million_spool(work: Path, body: Path, events: int) -> Row:
    data = work / "million"
    data.mkdir()
    started = time.monotonic()
    trio.run(_prefill, data / "data" / "spool.db", "conscent_out", events)
    filled = time.monotonic() - started
    config = daemon_config(data, "conscent", "conscent", "http://127.0.0.1:9")  # refused
    daemon = Child(
        router_run_args(config, data),
        daemon_ready,
        timeout=120,
    )
    try:
        ready = time.monotonic() - started - filled
        result = load(daemon.url, "/collect/event", body, 3, 8)
        time.sleep(2)
        pending = metric(daemon.url, "router_sink_events_queued", sink="conscent_out")
        rss = rss_peak_mib(daemon.proc.pid)
    finally:
        daemon.stop()
    return Row(
        f"{events:,} events in the disk spool, sink down",
        rps=result.rps,
        rss_mib=rss,
        target="peak RSS < 250 MB",
        notes=[
            f"{pending:.0f} pending; spool filled in {filled:.1f} s, "
            f"daemon ready {ready:.1f} s later"
        ],
    )


def validation_rows() -> list[Row]:
    try:
        from bench import validation
    except ImportError:
        return [Row("validation", 0, notes=["bench/validation.py not present"])]
    rows = []
    for name, cerberus_us, compiled_us in validation.measure(repeat=5):
        rows.append(
            Row(
                f"validate {name}",
                rps=0,
                ratio=cerberus_us / compiled_us,
                ceiling="cerberus",
                target=">= 30x",
                notes=[f"cerberus {cerberus_us:.1f} µs, compiled {compiled_us:.2f} µs"],
            )
        )
    return rows


# -- the table -----------------------------------------------------------------------


def best(repeat: int, run: Callable[[], Row]) -> Row:
    """The best of ``repeat`` runs (most delivered, then most requests per second)."""
    return max((run() for _ in range(repeat)), key=lambda r: (r.delivered_eps or 0, r.rps or 0))


def attempt(name: str, step: Callable[[], Row]) -> Row:
    """Run one step; a failure becomes a row that says so, and the other steps still run."""
    try:
        return step()
    except Exception as exc:  # a broken step must not lose the figures of the others
        return Row(name, rps=0, notes=[f"FAILED: {type(exc).__name__}: {exc}"])


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "" if value is None else format(value, spec)


def print_table(rows: list[Row]) -> None:
    header = (
        "what",
        "req/s",
        "accepted ev/s",
        "delivered ev/s",
        "p50 ms",
        "p99 ms",
        "peak RSS MiB",
        "ratio",
        "target",
    )
    lines = [header]
    for r in rows:
        ratio = (
            ""
            if r.ratio is None
            else (f"{r.ratio:.0f}x" if r.ceiling == "cerberus" else f"{r.ratio:.0%} of {r.ceiling}")
        )
        lines.append(
            (
                r.name,
                _fmt(r.rps) if r.rps else "",
                _fmt(r.accepted_eps),
                _fmt(r.delivered_eps),
                _fmt(r.p50_ms, ".1f"),
                _fmt(r.p99_ms, ".1f"),
                _fmt(r.rss_mib, ".0f"),
                ratio,
                r.target,
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        print("  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for r in rows:
        for note in r.notes:
            print(f"  {r.name}: {note}")


def machine() -> str:
    with open("/proc/cpuinfo") as info:
        lines = info.read().splitlines()
    cpu = next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
        "unknown CPU",
    )
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{cores} cores, {cpu}, Python {sys.version.split()[0]}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5, help="load per measurement")
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="runs of each measurement; the best counts (the VM is noisy)",
    )
    parser.add_argument("--setup", action="store_true", help="apt-get install wrk first")
    parser.add_argument("--spool-events", type=int, default=1_000_000)
    parser.add_argument("--only", nargs="*", help="run only steps whose name contains these")
    args = parser.parse_args(argv)
    if args.setup and not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)

    def want(name: str) -> bool:
        return not args.only or any(o in name for o in args.only)

    began = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="router-bench-") as tmp:
        work = Path(tmp)
        bodies = {
            name: work / f"{name}.json" for name in ("conscent", "segmento", "endu", "moloco")
        }
        bodies["conscent"].write_bytes(payloads.conscent_batch(100))
        bodies["segmento"].write_bytes(payloads.segmento_batch(100))
        bodies["endu"].write_bytes(payloads.endu_event())
        bodies["moloco"].write_bytes(payloads.moloco_event())
        s = args.seconds
        workloads = [
            Workload(
                "1. conscent 100-batch -> conscent",
                "conscent",
                "/collect/event",
                bodies["conscent"],
                100,
                "conscent_relay",
                "ceiling (conscent body)",
                "delivered ≥ 60% of ceiling ev/s",
                s,
            ),
            Workload(
                "2. conscent 100-batch -> moloco",
                "conscent",
                "/collect/event",
                bodies["conscent"],
                100,
                "moloco",
                "outbound ceiling",
                "delivered ≥ 70% of outbound req/s",
                min(2.0, s),
                connections=1,
            ),
            Workload(
                "3. endu single -> conscent",
                "endu",
                "/api/events/record",
                bodies["endu"],
                1,
                "conscent",
                "ceiling (endu body)",
                "accepted req/s ≥ 75% of ceiling",
                s,
            ),
            Workload(
                "4. segmento 100-batch -> file",
                "segmento",
                "/api/v5/segmento/user-events",
                bodies["segmento"],
                100,
                "file",
                "ceiling (segmento body)",
                "",
                s,
            ),
        ]
        if want("validation"):
            rows += validation_rows()
        ceilings: dict[str, Row] = {}
        for name in ("conscent", "endu", "segmento"):
            if want("ceiling") or want(name):
                result = max(
                    (ceiling(bodies[name], s, 32) for _ in range(args.repeat)), key=lambda r: r.rps
                )
                per = 1 if name == "endu" else 100
                ceilings[f"ceiling ({name} body)"] = row = Row(
                    f"ceiling: bare app, {name} body",
                    rps=result.rps,
                    accepted_eps=result.rps * per,
                    p50_ms=result.p50_ms,
                    p99_ms=result.p99_ms,
                )
                rows.append(row)
        if want("outbound") or want("moloco"):
            rps = max(outbound_ceiling(bodies["moloco"], s, 16) for _ in range(args.repeat))
            ceilings["outbound ceiling"] = row = Row(
                "outbound ceiling: pool loop, 16 conc.", rps=rps, delivered_eps=rps
            )
            rows.append(row)
            # What sinks posted through before router.outbound, for comparison.
            rps = max(
                outbound_ceiling(bodies["moloco"], s, 16, "httpx") for _ in range(args.repeat)
            )
            rows.append(
                Row(
                    "outbound: httpx loop, 16 conc.",
                    rps=rps,
                    delivered_eps=rps,
                    ceiling="outbound ceiling",
                    ratio=rps / row.rps,
                )
            )
        single = {}
        for w in workloads:
            if not want(w.name):
                continue
            row = best(args.repeat, lambda w=w: attempt(w.name, lambda: run_workload(w, work)))
            single[w.name] = row
            base = ceilings.get(w.ceiling)
            if base is not None and row.delivered_eps is not None:
                if w.name.startswith("3."):
                    row.ratio = row.rps / base.rps
                elif w.name.startswith("2."):
                    row.ratio = row.delivered_eps / base.rps
                else:
                    row.ratio = row.delivered_eps / base.accepted_eps
            rows.append(row)
        first = workloads[0]
        if want("workers") and want(first.name):
            row = best(
                args.repeat,
                lambda: attempt(
                    f"{first.name} --workers 2", lambda: run_workload(first, work, workers=2)
                ),
            )
            if first.name in single and single[first.name].delivered_eps and row.delivered_eps:
                row.ratio = row.delivered_eps / single[first.name].delivered_eps
                row.ceiling = "--workers 1"
            rows.append(row)
        if want("spool"):
            rows.append(
                attempt("spool", lambda: million_spool(work, bodies["conscent"], args.spool_events))
            )
    print(
        f"\nrouter benchmark, {machine()}, {args.seconds:g} s per load, "
        f"{time.monotonic() - began:.0f} s in all\n"
    )
    print_table(rows)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(
        json.dumps({"machine": machine(), "rows": [asdict(r) for r in rows]}, indent=2)
    )


if __name__ == "__main__":
    main()
