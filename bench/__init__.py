"""Benchmarks: ``python -m bench`` measures the daemon against ceilings in the same run."""
