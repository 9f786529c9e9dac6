"""Tests of the segmento plugin, one file per module kind."""
