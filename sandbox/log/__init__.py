"""sandbox/log."""
