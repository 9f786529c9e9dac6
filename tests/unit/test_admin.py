"""admin: the admin listener of a real daemon on loopback (reload, config, history, auth)."""

from __future__ import annotations

import httpx
import pytest
import trio
import yaml

from router.testing.daemon import running_daemon
from router.testing.process import DaemonProcess
from tests.helpers.ports import taken_port

TOKEN = "admin-token-7f3a9c"
API_KEY = "sink-key-51d0e2b8"


def doc(path, **admin) -> dict:
    return {
        "sources": {"in": {"plugin": "sample", "auth": "none"}},
        "sinks": {
            "out": {"plugin": "file", "path": str(path), "batch": {"max_wait": 0.01}},
            "hook": {"plugin": "sample", "url": "http://127.0.0.1:9/x", "api_key": API_KEY},
        },
        "routes": [{"from": "in", "to": "out"}],
        **({"admin": admin} if admin else {}),
    }


def builtin(path, **admin) -> dict:
    """A config a ``router run`` subprocess can load: built-in plugins only."""
    return {
        "sources": {"in": {"plugin": "conscent", "auth": "none"}},
        "sinks": {"out": {"plugin": "file", "path": str(path)}},
        "routes": [{"from": "in", "to": "out"}],
        **({"admin": admin} if admin else {}),
    }


def write(path, data) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "router.yaml"
    write(path, doc(tmp_path / "events.ndjson", token=TOKEN))
    return path


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_every_admin_path_needs_the_token(config_file, tmp_path, sample):
    async with (
        running_daemon(config_file, data_dir=tmp_path / "d", plugins=sample) as rd,
        httpx.AsyncClient(base_url=rd.admin_url) as admin,
    ):
        for method, path in [
            ("POST", "/admin/reload"),
            ("GET", "/admin/config"),
            ("GET", "/admin/reloads"),
            ("GET", "/admin/status"),
            ("GET", "/metrics"),
            ("GET", "/no/such/path"),
        ]:
            for headers in ({}, bearer("wrong"), {"Authorization": TOKEN}):
                r = await admin.request(method, path, headers=headers)
                assert r.status_code == 401, (method, path, headers)
                assert r.headers["www-authenticate"].startswith("Bearer")
                assert r.json()["status"] == 401
        assert (await admin.get("/admin/config", headers=bearer())).status_code == 200
        assert (await admin.get("/no/such/path", headers=bearer())).json()["status"] == 404


async def test_the_effective_config_has_defaults_and_no_secret(config_file, tmp_path, sample):
    async with (
        running_daemon(config_file, data_dir=tmp_path / "d", plugins=sample) as rd,
        httpx.AsyncClient(base_url=rd.admin_url, headers=bearer()) as admin,
    ):
        r = await admin.get("/admin/config")
    assert r.status_code == 200
    assert TOKEN not in r.text and API_KEY not in r.text
    effective = r.json()
    assert effective["server"]["max_connections"] == 1000  # a default, not in the file
    assert effective["sinks"]["hook"]["api_key"] == "[redacted]"
    assert effective["admin"]["token"] == "[redacted]"


async def test_the_admin_api_is_not_on_the_ingest_port(config_file, tmp_path, sample):
    async with running_daemon(config_file, data_dir=tmp_path / "d", plugins=sample) as rd:
        assert rd.admin_url != rd.url
        for path in ("/admin/reload", "/admin/config", "/admin/reloads", "/admin/status"):
            r = await rd.client.request("POST" if path.endswith("reload") else "GET", path)
            assert r.status_code in (404, 405), path


async def test_reload_through_the_api_applies_rejects_and_keeps_history(
    config_file, tmp_path, sample
):
    async with (
        running_daemon(config_file, data_dir=tmp_path / "d", plugins=sample) as rd,
        httpx.AsyncClient(base_url=rd.admin_url, headers=bearer()) as admin,
    ):
        unchanged = await admin.post("/admin/reload")
        assert (unchanged.status_code, unchanged.json()["result"]) == (200, "unchanged")

        changed = doc(tmp_path / "events.ndjson", token=TOKEN)
        changed["routes"].append({"from": "in", "to": "hook"})
        write(config_file, changed)
        applied = await admin.post("/admin/reload")
        assert (applied.status_code, applied.json()["result"]) == (200, "applied")
        assert applied.json()["changes"]["added"] == {"routes": ["in -> hook"]}

        broken = dict(changed, sinks={**changed["sinks"], "hook": {"plugin": "nope"}})
        write(config_file, broken)
        rejected = await admin.post("/admin/reload")
        assert rejected.status_code == 422
        assert rejected.json()["result"] == "rejected"
        assert any("sinks.hook.plugin" in line for line in rejected.json()["problems"])
        assert len(rd.topology.config.routes) == 2  # the rejected config changed nothing

        history = (await admin.get("/admin/reloads")).json()
    assert [(h["trigger"], h["result"]) for h in history] == [
        ("api", "unchanged"),
        ("api", "applied"),
        ("api", "rejected"),
    ]
    assert history[1]["config_hash"] not in ("", "-")


async def test_a_reload_changes_the_token_at_once(config_file, tmp_path, sample):
    async with (
        running_daemon(config_file, data_dir=tmp_path / "d", plugins=sample) as rd,
        httpx.AsyncClient(base_url=rd.admin_url) as admin,
    ):
        write(config_file, doc(tmp_path / "events.ndjson", token="the-next-token-88"))
        r = await admin.post("/admin/reload", headers=bearer())
        assert r.json()["result"] == "applied"
        assert (await admin.get("/admin/config", headers=bearer())).status_code == 401
        r = await admin.get("/admin/config", headers=bearer("the-next-token-88"))
        assert r.status_code == 200


async def test_without_a_token_the_admin_listener_is_open_on_loopback(tmp_path, sample):
    async with (
        running_daemon(doc(tmp_path / "e.ndjson"), data_dir=tmp_path / "d", plugins=sample) as rd,
        httpx.AsyncClient(base_url=rd.admin_url) as admin,
    ):
        assert rd.admin_url.startswith("http://127.0.0.1:")
        assert (await admin.get("/admin/reloads")).json() == []
        assert b"router_events_received_total" in (await admin.get("/metrics")).content


async def test_admin_off_and_a_unix_socket(tmp_path, sample):
    sock = tmp_path / "admin.sock"
    data = doc(tmp_path / "e.ndjson", bind=f"unix:{sock}")
    async with running_daemon(data, data_dir=tmp_path / "d", plugins=sample) as rd:
        # running_daemon moves it to port 0; a config read as it is keeps the socket.
        assert rd.admin_url.startswith("http://127.0.0.1:")
    transport = httpx.AsyncHTTPTransport(uds=str(sock))
    args = ["run", "-c", str(tmp_path / "r.yaml"), "--bind", "127.0.0.1:0"]
    process_doc = builtin(tmp_path / "e.ndjson", bind=f"unix:{sock}")
    write(tmp_path / "r.yaml", {**process_doc, "server": {"data_dir": str(tmp_path / "p")}})
    daemon = DaemonProcess([*args, "--admin-bind", f"unix:{sock}"])
    async with trio.open_nursery() as nursery:
        await daemon.start(nursery)
        assert daemon.admin_url == f"unix:{sock}"
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as admin:
            assert (await admin.get("/admin/reloads")).status_code == 200
        daemon.signal()
        assert await daemon.wait() == 0
    off = DaemonProcess([*args, "--admin-bind", "off"])
    async with trio.open_nursery() as nursery:
        await off.start(nursery)
        assert off.admin_url is None
        off.signal()
        assert await off.wait() == 0


async def test_a_taken_admin_port_is_one_line(tmp_path):
    write(tmp_path / "r.yaml", builtin(tmp_path / "e.ndjson"))
    args = ["run", "-c", str(tmp_path / "r.yaml"), "--bind", "127.0.0.1:0"]
    with taken_port() as port:
        daemon = DaemonProcess(
            [*args, "--admin-bind", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "d")]
        )
        async with trio.open_nursery() as nursery:
            with pytest.raises(RuntimeError, match="exited before it was ready"):
                await daemon.start(nursery)
            assert await daemon.wait() == 2
    assert daemon.raw[-1] == (
        f"router: error: cannot listen on 127.0.0.1:{port}: address already in use "
        "(another router or program is using it; pick another with admin.bind or --admin-bind)"
    )
    assert not any("Traceback" in line for line in daemon.raw)
