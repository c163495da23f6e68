"""Tests for sandbox/coordinator."""
