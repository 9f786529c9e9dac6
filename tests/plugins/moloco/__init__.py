"""Tests of the moloco plugin, one file per module kind."""
