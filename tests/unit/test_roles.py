"""``server.delivery: process``: which process delivers which sink, and what each runs."""

from __future__ import annotations

import textwrap

from router.config import load_config
from router.pluginmanager import make_plugin_manager
from router.registry import build_registry
from router.roles import delivers, delivery_config, roles_of
from router.yamlsource import load_yaml

CONFIG = """\
server: {delivery: process}
sources:
  in: {plugin: conscent, auth: none}
sinks:
  disk: {plugin: file, path: a.ndjson}
  memory: {plugin: file, path: b.ndjson, buffer: memory}
routes:
  - {from: in, to: [disk, memory]}
"""


def config(text: str = CONFIG):
    registry = build_registry(make_plugin_manager())
    return load_config(load_yaml(textwrap.dedent(text), "router.yaml", {}), registry)


def test_the_delivery_process_takes_the_disk_sinks_and_the_ingest_process_the_rest():
    c = config()
    assert [delivers("ingest", s) for s in c.sinks.values()] == [False, True]
    assert [delivers("delivery", s) for s in c.sinks.values()] == [True, False]
    assert [delivers("all", s) for s in c.sinks.values()] == [True, True]


def test_the_delivery_process_runs_no_source_and_only_the_disk_sinks():
    c = delivery_config(config())
    assert (dict(c.sources), c.routes, list(c.sinks)) == ({}, (), ["disk"])
    assert c.secrets == config().secrets and c.server == config().server


def test_roles_follow_the_setting():
    assert roles_of(config()) == ("ingest", "delivery")
    assert roles_of(config(CONFIG.replace("process", "inline"))) == ("all",)
    assert roles_of(config(CONFIG.replace("delivery: process", "workers: 3"))) == ("all",) * 3


def test_a_reloaded_config_keeps_the_sinks_the_delivery_process_runs_whatever_their_buffer():
    running = delivery_config(config())
    reloaded = config(CONFIG.replace("a.ndjson}", "a.ndjson, buffer: memory}"))
    assert list(delivery_config(reloaded).sinks) == []
    assert list(delivery_config(reloaded, running=running).sinks) == ["disk"]
    # A sink new to it comes in only with buffer: disk.
    moved = config(CONFIG.replace("b.ndjson, buffer: memory", "b.ndjson"))
    assert list(delivery_config(moved, running=running).sinks) == ["disk", "memory"]
