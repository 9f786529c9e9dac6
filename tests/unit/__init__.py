"""Tests of one core module each: ``test_<module>.py``."""
