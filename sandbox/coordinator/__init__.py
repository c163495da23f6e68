"""sandbox/coordinator."""
