"""Tests of CLI commands against a real stack."""
