"""``python -m bench``: the daemon measured against ceilings, one thing at a time, in one run.

Steps (each in its own processes, nothing else running):

1. compiled validators against cerberus, per vendor schema;
2. the ingest **ceiling**: a bare hypercorn-trio app that parses the JSON body
   and answers 201, with each workload's request body;
3. the **outbound ceiling**: a bare Trio loop posting single events to the
   fake upstream with the sinks' client (router.outbound), at the Moloco
   sink's concurrency;
4. the **daemon** (``router run``) on five workloads, the fake upstream in its
   own process; then workload 1 again with ``server.delivery: process`` (when
   that setting exists), with its spool in Redis (``buffer: redis``, Redis on
   127.0.0.1:6379), and with ``--workers 2``;
5. peak RSS of a daemon starting with a million events in its disk spool, and
   with about 1 GB of 900 kB events, its sink down.

CPU per event is the user plus system time of the whole process tree (the
ceiling app, or the daemon and any process it started; bench/proctree.py)
from the start of the load until the last event was delivered, divided by
the events. Load comes from ``wrk`` when installed (``--setup`` installs it
with apt), else from ``bench/loadgen.py``. Every ratio divides two figures
measured in this run on this machine. The table is followed by the targets
(bench/targets.py), each met or missed by how much; both are written to
``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import trio

from bench import payloads
from bench.procs import (
    Child,
    daemon_ready,
    metric,
    python,
    ready_line,
    upstream_stats,
    wait_until,
)
from bench.proctree import Others, cpu_seconds, rss_peak_mb
from bench.targets import Target, print_targets

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "bench" / "results"
REDIS_URL = "redis://127.0.0.1:6379/0"

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

    @property
    def ok_rps(self) -> float:
        """2xx answers per second."""
        return self.rps * (self.requests - self.non_2xx) / self.requests if self.requests else 0.0


@dataclass
class Row:
    """One line of the result table."""

    name: str
    rps: float = 0.0
    accepted_eps: float | None = None
    delivered_eps: float | None = None
    #: CPU time of the whole process tree per event, in µs.
    cpu_us: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    rss_mb: float | None = None
    ceiling: str = ""
    ratio: float | None = None
    #: The ceiling's CPU per event divided by this row's.
    cpu_ratio: float | None = None
    #: Cores that processes outside the benchmark used while it ran (Redis included).
    others_cores: float | None = None
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


def ceiling(name: str, body: Path, seconds: float, connections: int, per: int) -> Row:
    """The bare app under load with ``body``, ``per`` events in each request."""
    app = Child(python("-m", "bench.ceiling", "--port", "0"), ready_line)
    try:
        cpu = cpu_seconds(app.proc.pid)
        result = load(app.url, "/", body, seconds, connections)
        cpu = cpu_seconds(app.proc.pid) - cpu
    finally:
        app.stop()
    events = (result.requests - result.non_2xx) * per
    return Row(
        f"ceiling: bare app, {name} body",
        rps=result.rps,
        accepted_eps=result.ok_rps * per,
        cpu_us=cpu / events * 1e6 if events else None,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
    )


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
    # Every Conscent event translated; types Segmento has no default event for go as custom ones.
    "segmento": """\
      segmento_out:
        plugin: segmento
        url: {url}
        api_key: bench
    """,
    "file": """\
      file_out:
        plugin: file
        path: {data}/events.ndjson
    """,
}


def daemon_config(
    work: Path,
    source: str,
    sink: str,
    url: str,
    *,
    server: str = "",
    sink_options: str = "",
    redis: tuple[str, str] | None = None,
) -> Path:
    """A one-route config; ``server`` adds flow-style items to ``server:``, ``sink_options``
    YAML lines to the sink, ``redis`` is ``(url, key prefix)``."""
    path = work / "router.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        logging: {{level: info, format: json}}
        server: {{shutdown_timeout: 5{server}}}
        admin: {{bind: "127.0.0.1:0"}}
        sources:
          {source}: {{plugin: {source}, auth: none}}
        sinks:
        """)
        + textwrap.indent(textwrap.dedent(SINKS[sink]).format(url=url, data=work), "  ")
        + textwrap.indent(textwrap.dedent(sink_options), "    ")
        + f"routes: [{{from: {source}, to: {sink}_out}}]\n"
        + (f'redis: {{url: "{redis[0]}", prefix: {redis[1]}}}\n' if redis else "")
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
    #: What the ratio divides by: a ceiling's key, or another workload's name.
    ceiling: str
    #: ``delivered`` (ev/s ÷ the ceiling's ingest ev/s), ``rps`` (2xx req/s ÷ the
    #: ceiling's req/s), ``outbound`` (delivered ev/s ÷ its req/s), ``versus``
    #: (delivered ev/s ÷ the other workload's).
    ratio: str
    seconds: float
    connections: int = 32
    server: str = ""
    sink_options: str = ""
    redis: str | None = None
    workers: int = 1


def run_workload(w: Workload, work: Path) -> Row:
    up = upstream() if w.sink != "file" else None
    data = Path(tempfile.mkdtemp(prefix=f"w{w.name[:2].strip('. ')}-", dir=work))
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    config = daemon_config(
        data,
        w.source,
        w.sink,
        up.url if up else "",
        server=w.server,
        sink_options=w.sink_options,
        redis=(w.redis, prefix) if w.redis else None,
    )
    args = router_run_args(config, data)
    if w.workers > 1:
        args += ["--workers", str(w.workers)]
    daemon = Child(args, daemon_ready)
    pid = daemon.proc.pid
    sink = f"{w.sink}_out"
    try:
        cpu = cpu_seconds(pid)
        started = time.monotonic()
        result = load(daemon.url, w.path, w.body, w.seconds, w.connections)

        # The daemon's own count: the load tool misses requests in flight when it stops.
        def count(name: str, **labels: str) -> float:
            return metric(daemon.url, name, w.workers, **labels)

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
        cpu = cpu_seconds(pid) - cpu
        delivered = count("router_sink_events_delivered_total", sink=sink)
        row = Row(
            w.name,
            rps=result.rps,
            accepted_eps=accepted / result.seconds,
            delivered_eps=delivered / (finished - started),
            cpu_us=cpu / delivered * 1e6 if delivered else None,
            p50_ms=result.p50_ms,
            p99_ms=result.p99_ms,
            rss_mb=rss_peak_mb(pid),
            ceiling=w.ceiling,
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
            + f" ({accepted:.0f} events, {result.non_2xx} non-2xx, {result.tool}; "
            f"{cpu / (finished - started):.2f} cores busy)"
        )
        if w.redis:
            row.notes.append("Redis's own CPU is not in CPU µs/ev (it counts as another process)")
        return row
    finally:
        daemon.stop()
        if up is not None:
            up.stop()
        if w.redis:
            from router.testing.redis import delete_prefix

            trio.run(delete_prefix, prefix, w.redis)


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


def redis_reachable(url: str = REDIS_URL) -> bool:
    """Whether a Redis answers PING at ``url``'s host and port."""
    host, _, port = url.split("//", 1)[1].split("/", 1)[0].partition(":")
    try:
        with socket.create_connection((host, int(port or 6379)), timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def delivery_process_built() -> bool:
    """Whether ``server.delivery`` is a setting of this checkout (``process`` delivers apart)."""
    from router.config.schema import SERVER_DEFAULTS

    return "delivery" in SERVER_DEFAULTS


def spool_payload(event_bytes: int | None) -> bytes:
    """A Conscent event, padded with an unknown field (kept as is) to ``event_bytes``."""
    event = payloads.conscent_event(2)
    if event_bytes is None:
        return json.dumps(event).encode()
    base = len(json.dumps({**event, "pad": ""}).encode())
    return json.dumps({**event, "pad": "x" * max(0, event_bytes - base)}).encode()


def spool_limits(events: int, payload: bytes) -> tuple[int, int]:
    """(max_events, max_bytes) for a spool prefilled with ``events`` of ``payload``: room
    left for the load that follows (a million events, a GiB)."""
    return events + 1_000_000, events * len(payload) + (1 << 30)


async def _prefill(path: Path, sink: str, events: int, payload: bytes) -> None:
    from router.spool import Spool

    spool = Spool(path)
    max_events, max_bytes = spool_limits(events, payload)
    await spool.open([(sink, {"durable": True, "max_events": max_events, "max_bytes": max_bytes})])
    queue = spool.queues[sink]
    # Chunks of at most ~20 MB, so the prefill's own memory stays small.
    chunk = max(1, min(20_000, 20_000_000 // len(payload)))
    async with trio.open_nursery() as nursery:
        await nursery.start(spool.run)
        for start in range(0, events, chunk):
            stop = min(events, start + chunk)
            await queue.put([(f"pre-{i}", payload) for i in range(start, stop)], 0.0)
        await spool.close()
        nursery.cancel_scope.cancel()
    spool.close_db()


def spooled(work: Path, body: Path, events: int, event_bytes: int | None = None) -> Row:
    """Peak RSS of a daemon that starts with ``events`` in its disk spool, its sink refusing
    connections, then takes 3 s of load."""
    payload = spool_payload(event_bytes)
    data = Path(tempfile.mkdtemp(prefix="spool-", dir=work))
    started = time.monotonic()
    trio.run(_prefill, data / "data" / "spool.db", "conscent_out", events, payload)
    filled = time.monotonic() - started
    # Limits above the prefill, so the load is taken rather than refused as "spool full".
    limits = "spool: {{max_events: {}, max_bytes: {}}}\n".format(*spool_limits(events, payload))
    config = daemon_config(
        data, "conscent", "conscent", "http://127.0.0.1:9", sink_options=limits
    )  # port 9: refused
    daemon = Child(router_run_args(config, data), daemon_ready, timeout=120)
    try:
        ready = time.monotonic() - started - filled
        at_ready = rss_peak_mb(daemon.proc.pid)
        result = load(daemon.url, "/collect/event", body, 3, 8)
        time.sleep(2)
        pending = metric(daemon.url, "router_sink_events_queued", sink="conscent_out")
        rss = rss_peak_mb(daemon.proc.pid)
    finally:
        daemon.stop()
    size = events * len(payload)
    what = (
        f"{events:,} events"
        if event_bytes is None
        else f"{events:,} x {len(payload) / 1e3:.0f} kB events ({size / 1e9:.1f} GB)"
    )
    return Row(
        f"{what} in the disk spool, sink down",
        rps=result.rps,
        rss_mb=rss,
        notes=[
            f"{pending:.0f} pending ({size / 1e6:,.0f} MB prefilled); spool filled in "
            f"{filled:.1f} s, daemon ready {ready:.1f} s later at {at_ready:.0f} MB peak RSS; "
            f"then 3 s of load: {result.requests - result.non_2xx} requests taken, "
            f"{result.non_2xx} refused"
        ],
    )


def validation_rows() -> list[Row]:
    """One row per vendor: cerberus ÷ compiled, the lowest and highest over its schemas."""
    try:
        from bench import validation
    except ImportError:
        return [Row("validation", notes=["bench/validation.py not present"])]
    vendors: dict[str, list[tuple[float, float]]] = {}
    for name, cerberus_us, compiled_us in validation.measure(repeat=5):
        vendors.setdefault(name.split(".")[0], []).append((cerberus_us, compiled_us))
    rows = []
    for vendor, times in vendors.items():
        ratios = [c / v for c, v in times]
        rows.append(
            Row(
                f"validate {vendor} ({len(times)} schemas)",
                ratio=min(ratios),
                ceiling="cerberus",
                notes=[
                    f"compiled {min(ratios):.0f}x-{max(ratios):.0f}x faster than cerberus "
                    f"({min(v for _, v in times):.1f}-{max(v for _, v in times):.1f} µs/event)"
                ],
            )
        )
    return rows


# -- the table -----------------------------------------------------------------------


def attempt(name: str, step: Callable[[], Row]) -> Row:
    """Run one step; a failure becomes a row that says so, and the other steps still run.

    The row notes how much CPU other processes took meanwhile, when they took any.
    """
    others = Others()
    try:
        row = step()
    except Exception as exc:  # a broken step must not lose the figures of the others
        row = Row(name, notes=[f"FAILED: {type(exc).__name__}: {exc}"])
    row.others_cores = others.cores()
    if row.others_cores >= 0.1:
        row.notes.append(f"other processes used {row.others_cores:.1f} cores meanwhile")
    return row


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "" if value is None else format(value, spec)


def print_table(rows: list[Row]) -> None:
    header = (
        "what",
        "req/s",
        "accepted ev/s",
        "delivered ev/s",
        "CPU µs/ev",
        "CPU ratio",
        "p50 ms",
        "p99 ms",
        "peak RSS MB",
        "ratio",
    )
    lines = [header]
    for r in rows:
        # "1. conscent ... -> conscent" as a base is workload 1 (embedded, one process).
        base = r.ceiling if r.ceiling.startswith(("ceiling", "outbound")) else r.ceiling[:2]
        ratio = (
            ""
            if r.ratio is None
            else (f"{r.ratio:.0f}x" if r.ceiling == "cerberus" else f"{r.ratio:.0%} of {base}")
        )
        lines.append(
            (
                r.name,
                _fmt(r.rps) if r.rps else "",
                _fmt(r.accepted_eps),
                _fmt(r.delivered_eps),
                _fmt(r.cpu_us, ".1f"),
                _fmt(r.cpu_ratio, ".0%"),
                _fmt(r.p50_ms, ".1f"),
                _fmt(r.p99_ms, ".1f"),
                _fmt(r.rss_mb, ".0f"),
                ratio,
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


# -- the run ---------------------------------------------------------------------------

W1 = "1. conscent 100-batch -> conscent"
PROCESS = ", server.delivery: process"
W1_PROCESS = W1 + PROCESS
W1_REDIS = W1 + ", buffer: redis"
W1_WORKERS = W1 + " --workers 2"
W1_OUT100 = W1 + ", outbound batch 100 (was the default)"
W2 = "2. conscent 100-batch -> moloco"
W3 = "3. endu single -> conscent"
W4 = "4. segmento 100-batch -> file"
W5 = "5. conscent 100-batch -> segmento (translated)"
# Where delivery is the heavier half: the same with a delivery process of its own.
W2_PROCESS = W2 + PROCESS
W5_PROCESS = W5 + PROCESS
SPOOL_1M = "spool: events"
SPOOL_BIG = "spool: 900 kB events"
#: The large spooled events: 900 kB each, as many as make about 1 GB.
BIG_EVENT_BYTES = 900_000
BIG_SPOOL_BYTES = 1_000_000_000


def workloads(bodies: dict[str, Path], s: float) -> list[Workload]:
    conscent = ("conscent", "/collect/event", bodies["conscent"], 100)
    w1 = Workload(W1, *conscent, "conscent_relay", "ceiling (conscent body)", "delivered", s)
    return [
        w1,
        replace(w1, name=W1_PROCESS, server=", delivery: process"),
        replace(
            w1,
            name=W1_REDIS,
            ceiling=W1,
            ratio="versus",
            sink_options="buffer: redis\n",
            redis=REDIS_URL,
        ),
        replace(w1, name=W1_WORKERS, ceiling=W1, ratio="versus", workers=2),
        replace(
            w1,
            name=W1_OUT100,
            ceiling=W1,
            ratio="versus",
            sink_options="batch: {max_events: 100}\n",
        ),
        # Ingest throttled to one connection for 2 s: the upstream takes one event per
        # request, so delivery, not ingest, is what this measures.
        w2 := Workload(
            W2,
            *conscent,
            "moloco",
            "outbound ceiling",
            "outbound",
            min(2.0, s),
            connections=1,
        ),
        replace(w2, name=W2_PROCESS, server=", delivery: process"),
        Workload(
            W3,
            "endu",
            "/api/events/record",
            bodies["endu"],
            1,
            "conscent",
            "ceiling (endu body)",
            "rps",
            s,
        ),
        Workload(
            W4,
            "segmento",
            "/api/v5/segmento/user-events",
            bodies["segmento"],
            100,
            "file",
            "ceiling (segmento body)",
            "delivered",
            s,
        ),
        w5 := Workload(W5, *conscent, "segmento", "ceiling (conscent body)", "delivered", s),
        replace(w5, name=W5_PROCESS, server=", delivery: process"),
    ]


def ratio(w: Workload, row: Row, bases: dict[str, Row]) -> float | None:
    """``row``'s figure divided by its base's, as ``w.ratio`` says; None without both."""
    base = bases.get(w.ceiling)
    if base is None or row.delivered_eps is None:
        return None
    if w.ratio == "rps":
        return row.rps / base.rps if base.rps else None
    if w.ratio == "outbound":
        return row.delivered_eps / base.rps if base.rps else None
    if w.ratio == "versus":
        return row.delivered_eps / base.delivered_eps if base.delivered_eps else None
    return row.delivered_eps / base.accepted_eps if base.accepted_eps else None


def cpu_ratio(w: Workload, row: Row, bases: dict[str, Row]) -> float | None:
    """The ceiling's CPU per event divided by ``row``'s (1 = as cheap as the bare app)."""
    base = bases.get(w.ceiling)
    if w.ratio not in ("delivered", "rps") or base is None or not base.cpu_us or not row.cpu_us:
        return None
    return base.cpu_us / row.cpu_us


def choose(w: Workload | None, runs: list[tuple[Row, dict[str, Row]]]) -> Row:
    """The run of one step that counts, among its runs, each with the rows of its round.

    A workload's ratios divide by the base measured in the same round, minutes
    apart at most: other jobs on a shared machine come and go, and a ceiling
    measured at a quiet moment would make a busy moment's daemon look slow.
    The quietest run counts (least CPU taken by other processes from it and
    its base, to a tenth of a core), then the best ratio (or the most
    delivered): the best of several runs alone would pick the luckiest pair.
    """

    def quiet(row: Row, bases: dict[str, Row]) -> float:
        base = bases.get(w.ceiling) if w is not None else None
        return -round((row.others_cores or 0) + ((base.others_cores or 0) if base else 0), 1)

    if w is None:
        return max(runs, key=lambda run: (quiet(*run), run[0].delivered_eps or 0, run[0].rps))[0]
    for row, bases in runs:
        row.ratio = ratio(w, row, bases)
        row.cpu_ratio = cpu_ratio(w, row, bases)
        base = bases.get(w.ceiling)
        if row.ratio is not None and base is not None:
            if w.ratio in ("rps", "outbound"):
                figure = f"{base.rps:,.0f} req/s"
            elif w.ratio == "versus":
                figure = f"{base.delivered_eps:,.0f} delivered ev/s"
            else:
                figure = f"{base.accepted_eps:,.0f} ev/s"
            row.notes.append(
                f"its round's {w.ceiling}: {figure}"
                + (f", {base.cpu_us:.1f} CPU µs/ev" if row.cpu_ratio is not None else "")
            )
    return max(runs, key=lambda run: (quiet(*run), run[0].ratio or 0, run[0].delivered_eps or 0))[0]


def targets(rows: dict[str, Row], absent: dict[str, str], spool_events: int) -> list[Target]:
    """The targets, from this run's rows (keyed by step name)."""

    def figure(name: str, get: Callable[[Row], float | None]) -> dict:
        if name in absent:
            return {"absent": absent[name]}
        row = rows.get(name)
        value = get(row) if row is not None else None
        return {"measured": value} if value is not None else {}

    ratio_of = lambda r: r.ratio  # noqa: E731
    rss_of = lambda r: r.rss_mb  # noqa: E731
    validation = [r for name, r in rows.items() if name.startswith("validate ")]
    big_events = BIG_SPOOL_BYTES // BIG_EVENT_BYTES
    return [
        Target("1. conscent -> conscent: delivered ÷ ceiling ev/s", "min", 0.65, "%",
               **figure(W1, ratio_of)),
        Target("1. the same: ceiling CPU/event ÷ daemon CPU/event", "min", 0.65, "%",
               **figure(W1, lambda r: r.cpu_ratio)),
        Target("1. the same, server.delivery: process", "min", 0.75, "%",
               **figure(W1_PROCESS, ratio_of)),
        Target("5. conscent -> segmento (translated) ÷ ceiling", "min", 0.40, "%",
               **figure(W5, ratio_of)),
        Target("3. endu single -> conscent: req/s ÷ ceiling", "min", 0.90, "%",
               **figure(W3, ratio_of)),
        Target("1. buffer: redis, one daemon ÷ embedded spool", "min", 0.90, "%",
               **figure(W1_REDIS, ratio_of)),
        Target(f"peak RSS, {spool_events:,} events spooled, sink down", "max", 100, "MB",
               **figure(SPOOL_1M, rss_of)),
        Target(f"peak RSS, {big_events:,} x 900 kB events (1 GB) spooled, sink down", "max",
               100, "MB", **figure(SPOOL_BIG, rss_of)),
        Target("validation: compiled ÷ cerberus, slowest schema", "min", 30, "x",
               measured=min(r.ratio for r in validation) if validation else None),
    ]  # fmt: skip


#: The order of a round: each base just before what is divided by it.
ORDER = [
    "ceiling (conscent body)",
    W1,
    W1_PROCESS,
    W1_REDIS,
    W1_WORKERS,
    W1_OUT100,
    W5,
    W5_PROCESS,
    "ceiling (endu body)",
    W3,
    "ceiling (segmento body)",
    W4,
    "outbound ceiling",
    W2,
    W2_PROCESS,
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n")[0],
        epilog="steps, in order: validation; " + "; ".join([*ORDER, SPOOL_1M, SPOOL_BIG]),
    )
    parser.add_argument("--seconds", type=float, default=5, help="load per measurement")
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="rounds of the load measurements; the quietest counts, then the best (the VM "
        "is noisy)",
    )
    parser.add_argument("--setup", action="store_true", help="apt-get install wrk first")
    parser.add_argument(
        "--spool-events", type=int, default=1_000_000, help="small events in the spool step"
    )
    parser.add_argument(
        "--only",
        nargs="*",
        help="run only the steps whose name contains one of these (or is it, with a "
        "trailing $), and the steps their "
        "ratios divide by",
    )
    args = parser.parse_args(argv)
    if args.setup and not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)

    def want(name: str) -> bool:
        # "name$" asks for that step alone, not the variants whose names extend it.
        return not args.only or any(
            name == o[:-1] if o.endswith("$") else o in name for o in args.only
        )

    began = time.monotonic()
    # Other jobs on a shared machine move every figure: say how much CPU they took.
    others = Others()
    rows: dict[str, Row] = {}
    absent: dict[str, str] = {}
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
        if want("validation"):
            for row in validation_rows():
                rows[row.name] = row

        steps: dict[str, Callable[[], Row]] = {}
        for name in ("conscent", "endu", "segmento"):
            per = 1 if name == "endu" else 100
            steps[f"ceiling ({name} body)"] = lambda name=name, per=per: ceiling(
                name, bodies[name], s, 32, per
            )
        steps["outbound ceiling"] = lambda: Row(
            "outbound ceiling: pool loop, 16 conc.",
            rps=(rps := outbound_ceiling(bodies["moloco"], s, 16)),
            delivered_eps=rps,
        )
        by_name = {w.name: w for w in workloads(bodies, s)}
        for w in by_name.values():
            steps[w.name] = lambda w=w: run_workload(w, work)
        # The steps asked for, and what their ratios divide by (--only redis runs 1. too).
        chosen = {key for key in steps if want(key)}
        while bases := {by_name[k].ceiling for k in chosen if k in by_name} - chosen:
            chosen |= bases
        for key in list(steps):
            w = by_name.get(key)
            if key not in chosen:
                del steps[key]
            elif key.endswith(PROCESS) and not delivery_process_built():
                absent[key] = "not built"
                del steps[key]
            elif w is not None and w.redis and not redis_reachable(w.redis):
                absent[key] = "redis not reachable"
                del steps[key]
        rounds: list[dict[str, Row]] = []
        for _ in range(args.repeat):
            done: dict[str, Row] = {}
            for key in ORDER:
                if key in steps:
                    done[key] = attempt(key, steps[key])
            rounds.append(done)
        for key in ORDER:
            if key in absent:
                reason = {"not built": "not built: no server.delivery setting yet"}
                rows[key] = Row(key, notes=[reason.get(absent[key], absent[key])])
            elif key in steps:
                runs = [(done[key], done) for done in rounds]
                rows[key] = choose(by_name.get(key), runs)

        if want(SPOOL_1M):
            rows[SPOOL_1M] = attempt(
                SPOOL_1M, lambda: spooled(work, bodies["conscent"], args.spool_events)
            )
        if want(SPOOL_BIG):
            count = BIG_SPOOL_BYTES // BIG_EVENT_BYTES
            rows[SPOOL_BIG] = attempt(
                SPOOL_BIG, lambda: spooled(work, bodies["conscent"], count, BIG_EVENT_BYTES)
            )
    busy = others.cores()
    print(
        f"\nrouter benchmark, {machine()}, {args.seconds:g} s per load, best of {args.repeat} "
        f"rounds, {time.monotonic() - began:.0f} s in all; other processes used "
        f"{busy:.2f} cores meanwhile\n"
    )
    if busy > 0.25:
        print(
            "WARNING: other work shared the machine during this run: its figures are not "
            "comparable with a quiet run's (each row notes what it shared)\n"
        )
    print_table(list(rows.values()))
    print()
    goals = targets(rows, absent, args.spool_events)
    print_targets(goals)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "others_cores": busy,
                "rows": [asdict(r) for r in rows.values()],
                "targets": [{**asdict(t), "target": t.target, "verdict": t.verdict} for t in goals],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
