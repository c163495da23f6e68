"""sandbox/protocol."""
