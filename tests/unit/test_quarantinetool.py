"""`router quarantine replay` against a running daemon: fixed events go through, others stay."""

from __future__ import annotations

import json

import trio
import yaml

from router.cli import main
from router.testing.daemon import running_daemon

VALID = {
    "event_name": "page-view",
    "visitor_id": "v-1",
    "event_properties": {"title": "Home"},
    "event_timestamp": "2024-05-01 10:15:30",
}
#: No visitor_id: Segmento's source quarantines it (its default on_invalid).
BROKEN = {k: v for k, v in VALID.items() if k != "visitor_id"}


def config(tmp_path):
    return {
        "sources": {"seg": {"plugin": "segmento", "auth": "none", "on_invalid": "quarantine"}},
        "sinks": {
            "out": {
                "plugin": "file",
                "path": str(tmp_path / "out.ndjson"),
                "batch": {"max_wait": 0.01},
            }
        },
        "routes": [{"from": "seg", "to": "out"}],
    }


def printed(capsys):
    """The quarantined events printed by `list` (the daemon logs to the same stdout)."""
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"id":')]


async def delivered(path, count):
    with trio.fail_after(20):
        while True:
            lines = path.read_text().splitlines() if path.exists() else []
            if len(lines) >= count:
                return [json.loads(line) for line in lines]
            await trio.sleep(0.02)


async def test_replay_sends_fixed_events_and_keeps_the_invalid_ones(tmp_path, capsys):
    data_dir = tmp_path / "data"
    settings = config(tmp_path)
    config_file = tmp_path / "router.yaml"
    config_file.write_text(yaml.safe_dump(settings))
    async with running_daemon(settings, data_dir=data_dir) as running:
        answer = await running.client.post(
            "/api/v5/segmento/user-events", json={"data": [BROKEN, BROKEN]}
        )
        assert answer.status_code == 200

        def cli(*argv):
            base = ["--data-dir", str(data_dir), "-c", str(config_file), "--url", running.url]
            return main(["quarantine", *argv, *base])

        assert await trio.to_thread.run_sync(cli, "list") == 0
        listed = printed(capsys)
        assert [item["event"] for item in listed] == [BROKEN, BROKEN]

        # One fixed in a file, as `list` printed it; the other replayed unchanged.
        fixed = tmp_path / "fixed.ndjson"
        fixed.write_text(json.dumps({"id": listed[0]["id"], "event": VALID}) + "\n")
        assert await trio.to_thread.run_sync(cli, "replay", "--file", str(fixed)) == 0
        assert "replayed 1 quarantined events, 0 still invalid" in capsys.readouterr().err
        (event,) = await delivered(tmp_path / "out.ndjson", 1)
        assert event["identity"] == {"user_id": "v-1"} and event["type"] == "page_view"

        assert await trio.to_thread.run_sync(cli, "replay", "seg") == 1
        assert "replayed 0 quarantined events, 1 still invalid" in capsys.readouterr().err
        assert await trio.to_thread.run_sync(cli, "list") == 0
        (left,) = printed(capsys)
        assert left["id"] == listed[1]["id"] and left["errors"] == ["visitor_id: required field"]
