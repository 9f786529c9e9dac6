"""The conscent provider plugin."""
