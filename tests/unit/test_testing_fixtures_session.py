"""router.testing.fixtures: the fixtures every plugin's test suite gets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import router
from router.testing.fixtures import registry_of
from tests.helpers import sample_plugin


@given(st.sampled_from(["conscent", "endu", "moloco", "segmento"]))
def test_router_registry_serves_hypothesis_tests(router_registry, vendor):
    # A function-scoped fixture fails hypothesis's health check here.
    assert isinstance(router_registry, router.Registry)
    assert vendor in router_registry.codecs and vendor in router_registry.sources


@given(st.just("file"))
def test_router_builtin_registry_has_the_builtins_only(router_builtin_registry, kind):
    assert kind in router_builtin_registry.sinks
    assert {p.origin for p in router_builtin_registry.plugins} == {"builtin"}


def test_registry_of_registers_a_plugin_under_its_name():
    registry = registry_of([("sample", sample_plugin)])
    info = {p.name: p for p in registry.plugins}["sample"]
    assert (info.origin, info.version, info.sources) == ("extra", "1.2.3", ("sample",))
