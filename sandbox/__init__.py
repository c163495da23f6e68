"""Kafka-compatible local streaming sandbox: broker, coordinator, supervisor and CLI."""
__version__ = "0.1.0"
