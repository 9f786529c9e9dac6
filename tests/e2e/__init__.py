"""End-to-end tests: the daemon over loopback HTTP, real SQLite and Redis."""
