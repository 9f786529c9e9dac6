"""Reading a config file: the built-in default, ``${VAR}`` interpolation, ``Loaded``.

The YAML walk that keeps each key's line is :mod:`router.yamlsource`; this
module decides which file and which environment it reads.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Mapping
from pathlib import Path

from router.errors import ConfigError, ConfigProblem
from router.yamlsource import Loaded, load_yaml

__all__ = ["DEFAULT_CONFIG", "Loaded", "blocked_plugins", "read_config_file"]

#: The config ``router run`` uses without ``-c`` (``config/router.yaml`` is a copy).
DEFAULT_CONFIG = str(importlib.resources.files("router").joinpath("default.yaml"))


def read_config_file(
    path: str | Path | None,
    env: Mapping[str, str] | None = None,
    *,
    no_environment: bool = False,
) -> Loaded:
    """Parse a config file (``None``: the default config); raise ConfigError if it is unreadable.

    YAML errors are reported later, with the schema's. With ``no_environment``
    an unset ``${VAR}`` is a placeholder, not a problem (``router check
    --no-environment``); :func:`router.config.load_config` says what it accepts.
    """
    if path is None:
        text = importlib.resources.files("router").joinpath("default.yaml").read_text("utf-8")
        return load_yaml(text, DEFAULT_CONFIG, env, placeholders=no_environment)
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(path, None, "", f"cannot read: {exc.strerror}")]) from exc
    return load_yaml(text, path, env, placeholders=no_environment)


def blocked_plugins(loaded: Loaded) -> list[str]:
    """``plugins.disable`` read before validation (the plugin manager needs it first)."""
    plugins = loaded.data.get("plugins") if isinstance(loaded.data, dict) else None
    disable = plugins.get("disable") if isinstance(plugins, dict) else None
    return [p for p in disable if isinstance(p, str)] if isinstance(disable, list) else []
