"""sandbox/broker/handlers."""
