"""sandbox/runner."""
