"""Tests of the conscent plugin, one file per module kind."""
