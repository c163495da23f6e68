"""Supervisor and runner tests (runner_fakes: a fake clock, probe and spawner)."""
