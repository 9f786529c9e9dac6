"""The router's own test suite."""
