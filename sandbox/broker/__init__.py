"""sandbox/broker."""
