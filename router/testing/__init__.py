"""Test helpers for the router and its plugins.

A fault-injecting fake upstream, hypothesis strategies from cerberus
schemas, and a daemon running on a random loopback port.
"""
