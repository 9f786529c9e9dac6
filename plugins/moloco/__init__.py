"""The moloco provider plugin."""
