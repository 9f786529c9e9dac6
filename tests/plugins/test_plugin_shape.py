"""The four built-in plugins have one shape: a newcomer who read one can read them all."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import router
from router import URL_OPTION, Codec, Sink, Source, ValidatorSpec

PLUGINS = Path(__file__).parents[2] / "plugins"
VENDORS = ["conscent", "segmento", "moloco", "endu"]
MODULES = ["__init__", "codec", "ingest", "schema", "sink"]
HOOKS = ["router_codecs", "router_sinks", "router_sources", "router_validators"]

#: The names each module exports, by the vendor's title-case name.
EXPORTS = {
    "schema": lambda t: {"VENDOR", "VALIDATORS"},
    "codec": lambda t: {f"{t}Codec"},
    "ingest": lambda t: {f"{t}Source"},
    "sink": lambda t: {f"{t}Sink"},
}


def module(vendor: str, name: str):
    return importlib.import_module(
        f"router_plugins.{vendor}" + ("" if name == "__init__" else f".{name}")
    )


def source_of(vendor: str, name: str) -> ast.Module:
    return ast.parse((PLUGINS / vendor / f"{name}.py").read_text())


def test_the_built_ins_are_the_four_vendors():
    assert sorted(p.name for p in PLUGINS.iterdir() if (p / "__init__.py").exists()) == sorted(
        VENDORS
    )


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_same_modules(vendor):
    assert sorted(p.stem for p in (PLUGINS / vendor).glob("*.py")) == sorted(MODULES)
    assert not [p for p in (PLUGINS / vendor).iterdir() if p.is_dir() and p.name != "__pycache__"]


@pytest.mark.parametrize("vendor", VENDORS)
def test_init_holds_only_the_four_hookimpls(vendor):
    tree = source_of(vendor, "__init__")
    body = tree.body[1:] if ast.get_docstring(tree) else tree.body
    others = [
        ast.dump(node)[:60]
        for node in body
        if not isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef)
    ]
    assert others == []
    functions = [node for node in body if isinstance(node, ast.FunctionDef)]
    assert sorted(f.name for f in functions) == HOOKS
    package = module(vendor, "__init__")
    for name in HOOKS:
        assert hasattr(getattr(package, name), "router_impl"), f"{name} is not a @hookimpl"
    assert [getattr(package, name)() for name in HOOKS]  # each returns something


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_the_same_exported_names(vendor, name):
    mod = module(vendor, name)
    required = EXPORTS[name](vendor.title())
    assert required <= set(mod.__all__)
    for exported in mod.__all__:
        assert hasattr(mod, exported), f"{mod.__name__}.__all__ names missing {exported}"


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_parts_agree_on_the_vendor(vendor):
    title = vendor.title()
    schema = module(vendor, "schema")
    codec = getattr(module(vendor, "codec"), f"{title}Codec")
    source = getattr(module(vendor, "ingest"), f"{title}Source")
    sink = getattr(module(vendor, "sink"), f"{title}Sink")
    assert vendor == schema.VENDOR
    assert issubclass(codec, Codec) and codec.vendor == vendor
    assert issubclass(source, Source) and source.vendor == vendor
    assert issubclass(sink, Sink) and sink.kind == sink.vendor == vendor


@pytest.mark.parametrize("vendor", VENDORS)
def test_vendor_is_defined_once_in_schema(vendor):
    defined = [
        name
        for name in MODULES
        for node in source_of(vendor, name).body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name) and target.id == "VENDOR"
    ]
    assert defined == ["schema"]


@pytest.mark.parametrize("vendor", VENDORS)
def test_validators_are_one_list_in_schema(vendor):
    validators = module(vendor, "schema").VALIDATORS
    assert isinstance(validators, list)
    assert all(isinstance(spec, ValidatorSpec) and spec.vendor == vendor for spec in validators)
    assert "*" in {spec.event_type for spec in validators}
    assert module(vendor, "__init__").router_validators() == validators


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_same_sink_shape(vendor):
    sink = getattr(module(vendor, "sink"), f"{vendor.title()}Sink")
    assert inspect.signature(sink.__init__) == inspect.signature(Sink.__init__)
    # One URL check for every sink, and the core's send around the plugin's request.
    assert sink.options_schema["url"] is URL_OPTION
    assert "build_request" in vars(sink)
    assert sink.send is Sink.send
    assert sink.max_batch_events is not None


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_same_source_constructor(vendor):
    source = getattr(module(vendor, "ingest"), f"{vendor.title()}Source")
    assert inspect.signature(source.__init__) == inspect.signature(Source.__init__)


@pytest.mark.parametrize("vendor", VENDORS)
def test_codecs_resolve_type_map_through_the_base(vendor):
    codec = getattr(module(vendor, "codec"), f"{vendor.title()}Codec")
    assert codec.resolve_type is Codec.resolve_type
    assert codec.default_types, "default_types lists the vendor's type for canonical types"
    assert "resolve_type(" in (PLUGINS / vendor / "codec.py").read_text()
    assert 'get("type_map")' not in (PLUGINS / vendor / "codec.py").read_text()


def undocumented(mod) -> list[str]:
    missing = [] if mod.__doc__ else [mod.__name__]
    for name, obj in vars(mod).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
            continue
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if not obj.__doc__:
            missing.append(name)
        if inspect.isclass(obj):
            missing += [
                f"{name}.{attr}"
                for attr, member in vars(obj).items()
                if not attr.startswith("_") and inspect.isfunction(member) and not member.__doc__
            ]
    return missing


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("name", MODULES)
def test_docstrings_everywhere(vendor, name):
    assert undocumented(module(vendor, name)) == []


def test_the_check_sees_a_missing_docstring():
    import types

    def hook():
        return []

    fake = types.ModuleType("fake", "A module.")
    hook.__module__ = "fake"
    fake.hook = hook
    assert undocumented(fake) == ["hook"]
    assert router.Sink.build_request.__doc__
