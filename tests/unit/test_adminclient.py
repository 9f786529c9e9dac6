"""adminclient: where the command line finds the admin listener, and its token."""

from __future__ import annotations

import pytest
import yaml

from router.adminclient import admin_targets, admin_url
from router.errors import UsageError


@pytest.mark.parametrize(
    ("bind", "url"),
    [
        ("127.0.0.1:9091", "http://127.0.0.1:9091"),
        ("0.0.0.0:9091", "http://127.0.0.1:9091"),
        ("[::]:9091", "http://[::1]:9091"),
        ("[::1]:7000", "http://[::1]:7000"),
        ("admin.internal:80", "http://admin.internal:80"),
        ("unix:/run/router/admin.sock", "unix:/run/router/admin.sock"),
    ],
)
def test_the_url_of_an_admin_bind(bind, url):
    assert admin_url(bind) == url


def test_an_admin_listener_that_is_off_cannot_be_read():
    with pytest.raises(UsageError, match=r"admin listener is off \(admin.bind: off\)"):
        admin_url("off")


def test_tap_and_top_name_themselves_when_the_listener_is_off():
    with pytest.raises(UsageError, match=r"router tap reads it$"):
        admin_url("off", "router tap")


def test_the_options_then_the_config_then_the_default(tmp_path):
    config = tmp_path / "router.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "sources": {"in": {"plugin": "conscent", "auth": "none"}},
                "sinks": {"out": {"plugin": "file", "path": "e.ndjson"}},
                "routes": [{"from": "in", "to": "out"}],
                "admin": {"bind": "0.0.0.0:9200", "token": "from-the-config-1"},
            }
        )
    )
    assert admin_targets(["127.0.0.1:9300"], "t", str(config), "router tap") == (
        ["http://127.0.0.1:9300"],
        "t",
    )
    assert admin_targets(None, None, str(config), "router tap") == (
        ["http://127.0.0.1:9200"],
        "from-the-config-1",
    )
    assert admin_targets(None, "given", str(config), "router tap")[1] == "given"
    assert admin_targets(None, None, None, "router tap") == (["http://127.0.0.1:9091"], None)
