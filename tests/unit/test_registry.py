"""Hooks called through pluggy: call order, wrappers, tracing, duplicate names, plugins.require."""

from __future__ import annotations

import dataclasses
import re
import sys
import textwrap
import types
from pathlib import Path

import pytest
import trio

from router import Sink, hookimpl
from router.errors import PluginError
from router.pluginmanager import make_plugin_manager, trace_hooks
from router.registry import PluginInfo, Registry, build_registry


def impl(name: str, fn, **opts) -> types.SimpleNamespace:
    """A plugin object with one hookimpl, marked with ``opts`` (tryfirst, wrapper…)."""
    return types.SimpleNamespace(**{name: hookimpl(**opts)(fn)})


def sink_named(kind: str) -> type[Sink]:
    return type(f"Sink_{kind}", (Sink,), {"kind": kind})


def test_tryfirst_is_called_first_and_trylast_last_while_results_keep_load_order():
    calls = []

    def registering(name):
        def router_sinks():
            calls.append(name)
            return [sink_named(name)]

        return router_sinks

    extra = [
        ("early", impl("router_sinks", registering("early"), tryfirst=True)),
        ("b", impl("router_sinks", registering("b"))),
        ("late", impl("router_sinks", registering("late"), trylast=True)),
        ("d", impl("router_sinks", registering("d"))),
    ]
    registry = build_registry(make_plugin_manager(autoload=False, extra=extra))
    # pluggy's order: tryfirst, then the plugin loaded last first, trylast at the end.
    assert calls == ["early", "d", "b", "late"]
    assert list(registry.sinks)[-4:] == ["early", "b", "late", "d"]
    assert {p.name: p.sinks for p in registry.plugins}["late"] == ("late",)


def test_a_duplicate_is_blamed_on_the_plugin_loaded_later_whatever_the_call_order():
    extra = [
        ("first", impl("router_sinks", lambda: [sink_named("same")], trylast=True)),
        ("second", impl("router_sinks", lambda: [sink_named("same")], tryfirst=True)),
    ]
    with pytest.raises(PluginError) as info:
        build_registry(make_plugin_manager(autoload=False, extra=extra))
    assert str(info.value) == (
        "plugin 'second' in hook router_sinks: sink 'same' is already registered by 'first'"
    )


def test_a_hook_wrapper_wraps_each_plugins_call():
    seen = []

    def router_codecs():
        result = yield
        seen.extend(codec.vendor for codecs in result for codec in codecs)
        return result

    extra = [("watcher", impl("router_codecs", router_codecs, wrapper=True))]
    registry = build_registry(make_plugin_manager(autoload=False, extra=extra))
    assert sorted(seen) == ["conscent", "endu", "moloco", "segmento"]
    assert set(registry.codecs) == set(seen)
    assert "router_codecs" in {p.name: p.hooks for p in registry.plugins}["watcher"]


def test_a_raising_tryfirst_hook_is_named_and_stops_the_others():
    calls = []

    def broken():
        raise ValueError("no schema")

    extra = [
        ("broken", impl("router_validators", broken, tryfirst=True)),
        ("after", impl("router_validators", lambda: calls.append("after"))),
    ]
    with pytest.raises(
        PluginError, match=r"^plugin 'broken' in hook router_validators: ValueError: no schema$"
    ):
        build_registry(make_plugin_manager(autoload=False, extra=extra))
    assert calls == []


async def test_a_raising_startup_hook_stops_startup_naming_plugin_and_hook(
    tmp_path, sample, sample_config
):
    from router.testing.daemon import running_daemon

    def router_startup(config):
        raise RuntimeError("region not set")

    plugins = [*sample, ("regional", impl("router_startup", router_startup))]
    with pytest.RaisesGroup(PluginError, flatten_subgroups=True) as info:
        async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=plugins):
            pass  # pragma: no cover - startup fails
    (error,) = info.value.exceptions
    assert str(error) == "plugin 'regional' in hook router_startup: RuntimeError: region not set"


def test_trace_writes_each_call_and_result_with_the_plugin_name():
    lines: list[str] = []

    def broken():
        raise ValueError("bad")

    pm = make_plugin_manager(
        autoload=False, extra=[("broken", impl("router_config_schema", broken))]
    )
    trace_hooks(pm, write=lines.append)
    with pytest.raises(PluginError):
        build_registry(pm)
    assert "router hook call: router_config_schema() [broken]\n" in lines
    assert "router hook raised: router_config_schema() [broken] -> ValueError: bad\n" in lines

    lines.clear()
    pm = make_plugin_manager(autoload=False)
    trace_hooks(pm, write=lines.append)
    build_registry(pm)
    assert "router hook call: router_codecs() [conscent]\n" in lines
    assert any(
        re.fullmatch(r"router hook result: router_codecs\(\) \[conscent\] -> \[<.+>\]\n", line)
        for line in lines
    )
    assert (
        "router hook result: router_sinks() [file] -> [<class 'router.filesink.FileSink'>]\n"
        in lines
    )


async def test_trace_hooks_env_traces_startup_without_argument_values(
    tmp_path, sample, sample_config, monkeypatch, capsys
):
    from router.testing.daemon import running_daemon

    monkeypatch.setenv("ROUTER_TRACE_HOOKS", "1")
    sample_config["sources"]["in"]["auth"] = {"keys": ["k-very-secret-4242"]}
    plugins = [*sample, ("life", impl("router_startup", lambda registry, config: None))]
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=plugins):
        pass
    err = capsys.readouterr().err
    assert "router hook call: router_startup(registry, config) [life]\n" in err
    assert "router hook result: router_startup(registry, config) [life] -> None\n" in err
    assert "router hook call: router_shutdown(registry, config) [" not in err  # no impl
    assert "k-very-secret-4242" not in err


# -- entry points: tracing and duplicate names, in a real `router` process -----------


def add_dist(root: Path, dist: str, module: str, entry_points: str, source: str) -> None:
    """A temporary installed distribution: a module and its dist-info under ``root``."""
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"  # as a wheel names it
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[router.plugins]\n{entry_points}\n")


SINK_PLUGIN = """\
    from router import Sink, hookimpl

    class Shadow(Sink):
        kind = "shadow"

    @hookimpl
    def router_sinks():
        return [Shadow]
"""


async def router(root: Path, *args: str, **env: str) -> trio.CompletedProcess:
    return await trio.run_process(
        [sys.executable, "-m", "router", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", **env},
    )


async def test_router_trace_hooks_prints_the_hook_calls_of_router_plugins(tmp_path):
    add_dist(tmp_path, "shadow-plugin", "shadow_plugin", "shadow = shadow_plugin", SINK_PLUGIN)
    result = await router(tmp_path, "plugins", ROUTER_TRACE_HOOKS="1")
    assert result.returncode == 0, result.stderr
    err = result.stderr.decode()
    assert "router hook call: router_sinks() [shadow]\n" in err
    assert (
        "router hook result: router_sinks() [shadow] -> [<class 'shadow_plugin.Shadow'>]\n" in err
    )
    assert "router hook call: router_sources() [conscent]\n" in err
    assert b"shadow 0.1 (entrypoint)" in result.stdout

    quiet = await router(tmp_path, "plugins")
    assert quiet.returncode == 0 and b"router hook" not in quiet.stderr


async def test_an_entry_point_with_a_built_in_name_stops_startup(tmp_path):
    add_dist(tmp_path, "fake-conscent", "fake_conscent", "conscent = fake_conscent", SINK_PLUGIN)
    result = await router(tmp_path, "plugins")
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [
        "router: error: plugin 'conscent': two plugins have this name: the built-in "
        "router_plugins.conscent and entry point fake_conscent of fake-conscent 0.1; "
        "uninstall one, or add 'conscent' to plugins.disable to load neither"
    ]

    config = tmp_path / "router.yaml"
    config.write_text("plugins: {disable: [conscent]}\n")
    result = await router(tmp_path, "plugins", "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert b"conscent" not in result.stdout and b"segmento " in result.stdout


async def test_two_entry_points_with_one_name_stop_startup(tmp_path):
    add_dist(tmp_path, "twin-a", "twin_a", "twin = twin_a", SINK_PLUGIN)
    add_dist(tmp_path, "twin-b", "twin_b", "twin = twin_b", SINK_PLUGIN)
    result = await router(tmp_path, "plugins")
    assert result.returncode == 2
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith(
        "router: error: plugin 'twin': two plugins have this name: entry point twin_"
    )
    assert "twin-a 0.1" in line and "twin-b 0.1" in line


def test_an_extra_plugin_with_a_taken_name_is_refused():
    with pytest.raises(PluginError) as info:
        make_plugin_manager(autoload=False, extra=[("file", impl("router_sinks", lambda: []))])
    assert str(info.value) == (
        "plugin 'file': the name is already used by the builtin plugin; "
        "give each plugin its own name"
    )


# -- plugins.require ------------------------------------------------------------------


@pytest.fixture(scope="module")
def versions() -> Registry:
    """The built-ins, plus ``ex`` at 1.0.0 and ``pre`` at 2.0rc1 and ``odd`` at 'unknown'."""
    registry = build_registry(make_plugin_manager(autoload=False))
    fake = [
        PluginInfo(name, version, "extra", (), (), (), (), (), ())
        for name, version in (("ex", "1.0.0"), ("pre", "2.0rc1"), ("odd", "unknown"))
    ]
    return dataclasses.replace(registry, plugins=(*registry.plugins, *fake))


@pytest.mark.parametrize(
    "requirement",
    ["ex", "ex==1.0", "ex == 1.0.0", "ex>=1.0,<2", "ex~=1.0", "ex!=0.9", "ex==1.*", "pre>=1.5"],
)
def test_requirements_that_hold(versions, requirement):
    assert versions.check_requirement(requirement) is None


@pytest.mark.parametrize(
    ("requirement", "problem"),
    [
        ("ex>=1.1", "plugin 'ex' is version 1.0.0, ex>=1.1 is required"),
        ("ex>=0.5,<1", "plugin 'ex' is version 1.0.0, ex>=0.5,<1 is required"),
        ("ex!=1.0", "plugin 'ex' is version 1.0.0, ex!=1.0 is required"),
        ("absent>=1", "required plugin 'absent' is not installed"),
        (
            "odd>=1",
            "plugin 'odd' has version 'unknown', which cannot be checked against odd>=1",
        ),
        (
            "ex >> 1",
            "cannot parse requirement 'ex >> 1': give a plugin name and an optional "
            "version specifier, e.g. 'example>=1.0,<2'",
        ),
        (
            "ex[extra]>=1",
            "requirement 'ex[extra]>=1' may hold only a plugin name and a version specifier, "
            "not extras, a URL or an environment marker",
        ),
    ],
)
def test_requirements_that_fail_say_why(versions, requirement, problem):
    assert versions.check_requirement(requirement) == problem


def test_an_unhashable_plugin_object_with_hook_methods_is_called():
    @dataclasses.dataclass
    class Configured:  # eq=True: instances are unhashable
        kind: str

        @hookimpl(tryfirst=True)
        def router_sinks(self):
            return [sink_named(self.kind)]

    registry = build_registry(make_plugin_manager(autoload=False, extra=[("dc", Configured("dc"))]))
    assert registry.sinks["dc"].kind == "dc"
    assert {p.name: p.sinks for p in registry.plugins}["dc"] == ("dc",)
