"""Tests of sandbox.health: lag trends, metrics, the HTTP endpoint."""
