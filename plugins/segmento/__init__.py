"""The segmento provider plugin."""
