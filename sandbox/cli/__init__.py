"""sandbox/cli."""
