"""Tests of the endu plugin, one file per module kind."""
