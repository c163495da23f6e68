"""sandbox/health."""
