"""Tests of the bundled vendor plugins."""
