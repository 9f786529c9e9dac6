"""The endu provider plugin."""
