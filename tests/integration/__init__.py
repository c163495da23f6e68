"""Integration tests: real broker processes, real clients (confluent-kafka, kafka-python, aiokafka, kcat)."""
