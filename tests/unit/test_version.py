"""router.version: one version for the package, its metadata and the built-in plugins."""

import importlib.metadata

import router
from router.pluginmanager import make_plugin_manager
from router.version import __version__


def test_one_version_everywhere():
    assert router.__version__ == __version__ == importlib.metadata.version("event-router")
    pm = make_plugin_manager(autoload=False)
    assert pm.origins["conscent"] == (__version__, "builtin")
