"""build_topology: the graph a config makes, and a second one built beside it."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import trio

from router import hookimpl
from router.errors import PluginError
from router.metrics import Metrics
from router.resources import Resources
from router.testing.daemon import build_config
from router.topology import build_topology
from tests.helpers.sample_plugin import SampleSink


def two_sinks(tmp_path):
    """One sample source routed to two file sinks, with an inbound limit."""
    return {
        "sources": {
            "in": {"plugin": "sample", "auth": "none", "rate_limit": {"rate": 100, "burst": 10}}
        },
        "sinks": {
            "a": {"plugin": "file", "path": str(tmp_path / "a.ndjson")},
            "b": {"plugin": "file", "path": str(tmp_path / "b.ndjson")},
        },
        "routes": [{"from": "in", "to": ["a", "b"]}],
    }


@pytest.fixture
async def resources(tmp_path):
    res = Resources(tmp_path / "data", Metrics())
    yield res
    await res.close()


async def opened(resources, config):
    await resources.open(config.sinks)
    return resources


async def test_builds_a_node_per_sink_and_a_runtime_per_source(tmp_path, sample, resources):
    config, registry = build_config(two_sinks(tmp_path), plugins=sample)
    await opened(resources, config)
    topology = build_topology(config, registry, resources)
    assert set(topology.sinks) == {"a", "b"} and set(topology.sources) == {"in"}
    for name, node in topology.sinks.items():
        assert node.queue is resources.queues[name]
        assert node.runner.queue is node.queue and node.target.queue is node.queue
        assert node.runner.sink is node.sink is node.target.sink
    (route,) = topology.sources["in"].routes
    assert [t.name for t in route.targets] == ["a", "b"]
    runtime, name, params = topology.ingest.match("POST", "/sample/events")
    assert runtime is topology.sources["in"] and name == "ingest" and params == {}
    assert topology.ingest.match("GET", "/sample/events") is None


async def test_is_immutable(tmp_path, sample, resources):
    config, registry = build_config(two_sinks(tmp_path), plugins=sample)
    await opened(resources, config)
    topology = build_topology(config, registry, resources)
    with pytest.raises(dataclasses.FrozenInstanceError):
        topology.config = config  # type: ignore[misc]
    with pytest.raises(TypeError):
        topology.sinks["c"] = topology.sinks["a"]  # type: ignore[index]
    with pytest.raises(TypeError):
        del topology.sources["in"]  # type: ignore[attr-defined]


async def test_the_same_config_again_carries_everything_over(tmp_path, sample, resources):
    config, registry = build_config(two_sinks(tmp_path), plugins=sample)
    await opened(resources, config)
    first = build_topology(config, registry, resources)
    again, _ = build_config(two_sinks(tmp_path), plugins=sample)
    second = build_topology(again, registry, resources, previous=first)
    assert second is not first
    for name in ("a", "b"):
        assert second.sinks[name] is first.sinks[name]
    assert second.sources["in"] is first.sources["in"]


async def test_a_changed_sink_gets_a_new_sink_on_the_same_queue_and_runner(
    tmp_path, sample, resources
):
    doc = two_sinks(tmp_path)
    config, registry = build_config(doc, plugins=sample)
    await opened(resources, config)
    first = build_topology(config, registry, resources)
    changed = copy.deepcopy(doc)
    changed["sinks"]["b"]["batch"] = {"max_events": 7}
    second = build_topology(
        build_config(changed, plugins=sample)[0], registry, resources, previous=first
    )
    assert second.sinks["a"] is first.sinks["a"]
    old, new = first.sinks["b"], second.sinks["b"]
    assert new.sink is not old.sink
    # Building changes nothing that runs: the same runner, still on its old sink,
    # is reconfigured when the topology is swapped in.
    assert new.queue is old.queue and new.runner is old.runner
    assert old.runner.sink is old.sink and old.runner.config.batch.max_events != 7
    assert new.config.batch.max_events == 7
    # The source's routes now lead to the new target, so its runtime is new;
    # its Source instance and its limiter (limit unchanged) are carried over.
    old_rt, new_rt = first.sources["in"], second.sources["in"]
    assert new_rt is not old_rt
    assert [t.sink for t in new_rt.routes[0].targets] == [first.sinks["a"].sink, new.sink]
    assert new_rt.source is old_rt.source and new_rt.limiter is old_rt.limiter


async def test_a_changed_route_or_limit_rebuilds_only_the_source(tmp_path, sample, resources):
    doc = two_sinks(tmp_path)
    config, registry = build_config(doc, plugins=sample)
    await opened(resources, config)
    first = build_topology(config, registry, resources)
    changed = copy.deepcopy(doc)
    changed["routes"] = [{"from": "in", "to": ["a"], "filter": {"types": ["purchase"]}}]
    changed["sources"]["in"]["rate_limit"] = {"rate": 5, "burst": 1}
    second = build_topology(
        build_config(changed, plugins=sample)[0], registry, resources, previous=first
    )
    assert second.sinks["a"] is first.sinks["a"] and second.sinks["b"] is first.sinks["b"]
    runtime = second.sources["in"]
    assert runtime is not first.sources["in"]
    assert runtime.limiter is not first.sources["in"].limiter
    (route,) = runtime.routes
    assert set(route.types) == {"purchase"}
    assert [t.name for t in route.targets] == ["a"]


class ExplodingSink(SampleSink):
    kind = "exploding"

    def __init__(self, *args, **kwargs):
        raise ValueError("cannot start")


class ExplodingPlugin:
    @hookimpl
    def router_sinks(self):
        return [ExplodingSink]


async def test_a_failing_sink_constructor_names_the_plugin(tmp_path, sample, resources):
    doc = {
        "sources": {"in": {"plugin": "sample", "auth": "none"}},
        "sinks": {"up": {"plugin": "exploding", "url": "http://127.0.0.1:9"}},
        "routes": [{"from": "in", "to": "up"}],
    }
    config, registry = build_config(doc, plugins=[*sample, ("exploding", ExplodingPlugin())])
    await opened(resources, config)
    with pytest.raises(PluginError) as caught:
        build_topology(config, registry, resources)
    assert "exploding" in str(caught.value) and "ValueError: cannot start" in str(caught.value)


async def test_unchanged_runner_keeps_delivering_across_a_rebuild(tmp_path, sample, resources):
    """A carried-over node is the running runner itself: nothing stops or restarts."""
    config, registry = build_config(two_sinks(tmp_path), plugins=sample)
    await opened(resources, config)
    first = build_topology(config, registry, resources)
    second = build_topology(config, registry, resources, previous=first)
    async with trio.open_nursery() as nursery:
        await nursery.start(resources.run)
        runner = second.sinks["a"].runner
        await nursery.start(runner.run)
        assert first.sinks["a"].runner is runner
        runner.stop()
        await resources.flush()
        nursery.cancel_scope.cancel()
