"""The README's tour, pasted as written into a shell next to the README's running daemon."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sys
from pathlib import Path

import trio

from router.testing.process import DaemonProcess

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()


def block_after(heading: str) -> str:
    """The first ``sh`` code block after ``heading``."""
    rest = README[README.index(heading) :]
    return re.search(r"```sh\n(.+?)\n```", rest, re.DOTALL).group(1)


def commands(block: str) -> list[str]:
    """Shell commands, each joined across its continued lines and open quotes."""
    out, current = [], ""
    for line in block.splitlines():
        current = f"{current}\n{line}" if current else line
        try:
            shlex.split(current, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        if current.endswith("\\"):
            continue
        out.append(current)
        current = ""
    assert not current, f"unterminated command: {current}"
    return out


async def shell(command: str, cwd: Path) -> str:
    """Run ``command`` until it succeeds and prints something (the file sink writes shortly)."""
    last = ""
    with trio.move_on_after(30):
        while True:
            result = await trio.run_process(
                ["bash", "-o", "pipefail", "-c", command],
                cwd=cwd,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env={**os.environ, "ROUTER_DEBUG": ""},
            )
            output = (result.stdout + result.stderr).decode()
            if result.returncode == 0 and output.strip():
                return output
            last = f"exit {result.returncode}: {output}"
            await trio.sleep(0.1)
    raise AssertionError(f"{command!r} did not succeed within 30 s; last: {last}")


async def test_the_tour_works_as_written(tmp_path):
    # The reader is in a checkout where the README's first command made .venv.
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    (tmp_path / "config").symlink_to(ROOT / "config")
    install_and_run = block_after("Run the daemon on the default config")
    run = shlex.split(install_and_run.split("&&")[-1])
    assert run == [".venv/bin/router", "run"]
    daemon = DaemonProcess([], cwd=tmp_path)
    daemon.args = [str(tmp_path / run[0]), *run[1:], "--bind", "127.0.0.1:0"]
    daemon.args += ["--admin-bind", "127.0.0.1:0"]
    tour = commands(block_after("## A short tour"))
    assert len(tour) >= 5
    async with trio.open_nursery() as nursery:
        await daemon.start(nursery)
        port = daemon.url.rsplit(":", 1)[1]
        outputs = []
        for command in tour:
            output = await shell(command.replace("localhost:8080", f"localhost:{port}"), tmp_path)
            comment = command.rsplit("#", 1)[1].strip() if "#" in command else ""
            if comment.startswith("{"):  # the README shows the output
                assert comment in output, (command, output)
            outputs.append(output)
        daemon.signal(signal.SIGINT)
        assert await daemon.wait() == 0
    shown = dict(zip(tour, outputs, strict=True))
    canonical = json.loads(
        shown["tail -1 data/events.ndjson                           # the same event, canonical"]
    )
    assert canonical["type"] == "heartbeat"
    assert canonical["identity"]["anonymous_id"] == "0b7e8a52-3c1d-4f7e-9a6b-2d4c8e1f5a90"
    assert any("router_events_received_total" in o for o in outputs)


async def test_the_relay_command_names_a_valid_config(tmp_path):
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    (tmp_path / "config").symlink_to(ROOT / "config")
    (relay,) = commands(block_after("### Relays"))
    assert " run -c " in relay
    output = await shell(relay.replace(" run -c ", " check -c "), tmp_path)
    assert "config/examples/conscent-to-moloco.yaml: ok: 1 sources, 1 sinks, 1 routes" in output
