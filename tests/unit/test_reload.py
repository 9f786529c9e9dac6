"""router.reload: what a new config changes, what it cannot, and the history of reloads."""

from __future__ import annotations

import copy

from prometheus_client import CollectorRegistry

from router.reload import ReloadHistory, applicable, compare, config_hash
from router.testing.daemon import build_config


def doc():
    return {
        "sources": {"in": {"plugin": "sample", "auth": "none"}},
        "sinks": {
            "a": {"plugin": "sample", "url": "http://127.0.0.1:9/a"},
            "b": {"plugin": "sample", "url": "http://127.0.0.1:9/b"},
        },
        "routes": [{"from": "in", "to": "a"}, {"from": "in", "to": "b"}],
    }


def config(d, sample):
    return build_config(d, plugins=sample)[0]


def test_the_same_config_changes_nothing(sample):
    changes = compare(config(doc(), sample), config(doc(), sample))
    assert changes.empty and changes.restart_required == ()


def test_added_removed_and_changed_are_named(sample):
    new = copy.deepcopy(doc())
    del new["sinks"]["b"]
    new["routes"] = [{"from": "in", "to": "a", "filter": {"types": ["purchase"]}}]
    new["sinks"]["c"] = {"plugin": "sample", "url": "http://127.0.0.1:9/c"}
    new["routes"].append({"from": "in", "to": "c"})
    new["sources"]["in"]["prefix"] = "/v2"
    changes = compare(config(doc(), sample), config(new, sample))
    assert changes.added == {"sources": (), "sinks": ("c",), "routes": ("in -> c",)}
    assert changes.removed == {"sources": (), "sinks": ("b",), "routes": ("in -> b",)}
    assert changes.changed == {
        "sources": ("in",),
        "sinks": (),
        "routes": ("in -> a",),
        "settings": (),
    }
    assert changes.to_dict()["added"] == {"sinks": ["c"], "routes": ["in -> c"]}


def test_server_settings_fixed_at_start_need_a_restart_and_keep_their_value(sample):
    new = copy.deepcopy(doc())
    new["server"] = {"bind": "127.0.0.1:9999", "max_json_depth": 9, "shutdown_timeout": 3}
    new["logging"] = {"level": "debug"}
    old_config, new_config = config(doc(), sample), config(new, sample)
    changes = compare(old_config, new_config)
    assert changes.restart_required == ("server.bind", "logging")
    # The live server settings are a change to apply, not "unchanged".
    assert not changes.empty
    assert changes.changed["settings"] == ("server.max_json_depth", "server.shutdown_timeout")
    applied = applicable(old_config, new_config)
    assert applied.server.bind == old_config.server.bind
    assert applied.logging == old_config.logging
    assert applied.server.max_json_depth == 9 and applied.server.shutdown_timeout == 3


def test_applicable_keeps_every_secret_it_ever_saw(sample):
    old = copy.deepcopy(doc())
    old["sinks"]["a"]["api_key"] = "first-secret-value"
    new = copy.deepcopy(doc())
    new["sinks"]["a"]["api_key"] = "second-secret-value"
    applied = applicable(config(old, sample), config(new, sample))
    assert {"first-secret-value", "second-secret-value"} <= applied.secrets


def test_config_hash_is_of_the_file(tmp_path, sample):
    path = tmp_path / "router.yaml"
    path.write_text("a: 1\n")
    c = build_config(doc(), plugins=sample, file=str(path))[0]
    first = config_hash(c)
    path.write_text("a: 2\n")
    assert config_hash(c) != first and len(first) == 16
    assert config_hash(build_config(doc(), plugins=sample, file="<nowhere>")[0]) == "-"


def test_history_keeps_the_last_reloads_and_counts_them():
    registry = CollectorRegistry()
    history = ReloadHistory(registry, size=3)
    for i in range(5):
        history.record("signal", "applied" if i % 2 else "rejected", f"h{i}", problems=["x"])
    assert [r["config_hash"] for r in history.to_list()] == ["h2", "h3", "h4"]
    assert registry.get_sample_value("router_config_reloads_total", {"result": "rejected"}) == 3
    assert registry.get_sample_value("router_config_reloads_total", {"result": "applied"}) == 2
    assert registry.get_sample_value("router_config_reloads_total", {"result": "unchanged"}) == 0


def test_a_sinks_queue_settings_need_a_restart(sample):
    new = copy.deepcopy(doc())
    new["sinks"]["a"]["spool"] = {"max_events": 10}
    new["sinks"]["a"]["dedup"] = {"window": "1m"}
    new["sinks"]["a"]["batch"] = {"max_events": 5}
    changes = compare(config(doc(), sample), config(new, sample))
    assert changes.changed["sinks"] == ("a",)  # the rest (batch) is applied
    assert changes.restart_required == ("sinks.a.dedup_window", "sinks.a.spool.max_events")


def test_the_admin_listener_moves_on_restart_and_its_token_changes_live(sample):
    new = copy.deepcopy(doc())
    new["admin"] = {"bind": "127.0.0.1:9999", "token": "a-new-admin-token"}
    old_config, new_config = config(doc(), sample), config(new, sample)
    changes = compare(old_config, new_config)
    assert changes.restart_required == ("admin.bind",)
    assert changes.changed["settings"] == ("admin.token",)
    applied = applicable(old_config, new_config)
    assert applied.admin.bind == "127.0.0.1:9091"
    assert applied.admin.token == "a-new-admin-token"
