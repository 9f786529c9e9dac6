"""Plugins, traffic and faults shared by the suite; import as ``tests.helpers.<module>``."""
