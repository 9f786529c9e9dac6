"""Every hook a router plugin can implement, declared once.

Hooks are synchronous (pluggy is) and declarative: the registration hooks are
called once at startup and return specs; the I/O they imply happens later in
``Sink``/``Source`` methods that the core supervises. An implementation may
accept any subset of a hook's parameters.

Every hook is called through pluggy, one plugin at a time (see
``router.registry``): ``tryfirst``/``trylast`` set the call order, hook
wrappers wrap each plugin's call, and ``ROUTER_TRACE_HOOKS=1`` traces them.
A hook that raises at startup stops the daemon with a ``PluginError``
naming the plugin and the hook. ``docs/plugins.md`` has a section per hook.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from router.codec import Codec
    from router.config import RouterConfig
    from router.registry import Registry
    from router.sink import Sink
    from router.source import Source
    from router.validation import ValidatorSpec

#: The project name pluggy uses for markers and the entry-point group prefix.
PROJECT = "router"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --------------------------------------------------------------------------
# Configuration (before the config is validated)
# --------------------------------------------------------------------------


@hookspec
def router_config_schema() -> Mapping[str, Any] | None:
    """Declare the options this plugin reads from ``plugins.<plugin name>``.

    Called once, before the config file is validated; the core merges every
    plugin's part into the config schema, so a typo in a plugin's options is
    reported like any other config error (file, line and key).

    :returns: A cerberus schema (field name -> rules) for the plugin's section,
        or ``None`` if the plugin has no options. Read the validated values
        with ``config.plugin_settings("<plugin name>")``.
    """


# --------------------------------------------------------------------------
# Registration (once, at startup, before the config is validated: the
# options schemas of registered sources and sinks are part of the config
# schema). Options reach instances through their ``options`` argument.
# --------------------------------------------------------------------------


@hookspec
def router_codecs() -> Iterable[Codec] | None:
    """Register codecs that translate vendor events to and from the canonical Event.

    :returns: ``router.Codec`` instances, one per vendor name; two
        codecs with the same ``vendor`` abort startup with ``PluginError``.
    """


@hookspec
def router_validators() -> Iterable[ValidatorSpec] | None:
    """Register the cerberus schemas of a vendor's event types.

    Incoming events are checked against the spec of their type before they
    are accepted, and outgoing events against the destination's spec before
    they are queued, so nothing malformed is ever sent.

    :returns: ``router.ValidatorSpec`` objects, at most one per
        (vendor, event type); ``event_type="*"`` covers the rest.
    """


@hookspec
def router_sources() -> Iterable[type[Source]] | None:
    """Register ingest APIs: ``router.Source`` subclasses and their routes.

    A config ``sources.<name>: {plugin: <vendor>}`` mounts the routes of the
    Source whose ``vendor`` is ``<vendor>``; one class serves any number of
    configured sources, each with its own instance.

    :returns: Source subclasses; two with the same ``vendor`` abort startup.
    """


@hookspec
def router_sinks() -> Iterable[type[Sink]] | None:
    """Register destination APIs: ``router.Sink`` subclasses.

    A config ``sinks.<name>: {plugin: <kind>}`` creates one instance of the
    Sink whose ``kind`` is ``<kind>``. Do no I/O here: connect in ``Sink.open``.

    :returns: Sink subclasses; two with the same ``kind`` abort startup.
    """


# --------------------------------------------------------------------------
# Lifecycle
# --------------------------------------------------------------------------


@hookspec
def router_startup(registry: Registry, config: RouterConfig) -> None:
    """Called once when the daemon has opened its sinks, before it listens.

    :param registry: Everything registered: sources, sinks, codecs, validators.
    :param config: The validated config.
    Must not block. Raising aborts startup with ``PluginError``.
    """


@hookspec
def router_shutdown(registry: Registry, config: RouterConfig) -> None:
    """Called once after the daemon stopped listening and its sinks drained.

    Must not block. An exception is logged and does not stop the shutdown.
    """
