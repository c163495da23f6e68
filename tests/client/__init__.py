"""Tests of sandbox.client against a real broker process."""
