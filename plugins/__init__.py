"""The built-in provider plugins, installed as ``router_plugins``.

Each subpackage is an ordinary router plugin, registered exactly like a
third-party one; see ``router.pluginmanager.BUILTIN_PLUGINS``.
"""
